"""Subjects: which model at which checkpoint (grammar), how it loads (loading), what identifies it (identity)."""

from harness.subjects.grammar import (
    GRAMMAR,
    Subject,
    SubjectError,
    describe,
    expand_subjects,
    family_steps,
    parse_subject,
)

__all__ = ["GRAMMAR", "Subject", "SubjectError", "describe", "expand_subjects", "family_steps", "parse_subject"]
