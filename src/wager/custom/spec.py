"""Placeholder schema, replaced by the bring-your-own-model domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class CustomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    domain: Literal["model"] = "model"
