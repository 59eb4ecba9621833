"""Running a spec through the shared path: validate, model, infer, check, decide."""
