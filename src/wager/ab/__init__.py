"""Bayesian A/B testing: conversion, count and revenue metrics; ship / keep / keep testing."""

from wager.ab.domain import prepare
from wager.ab.spec import ABPolicy, ABSpec, Arm

__all__ = ["ABPolicy", "ABSpec", "Arm", "prepare"]
