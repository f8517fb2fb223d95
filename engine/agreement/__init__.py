"""The agreement file: its shape and wording (``schema``) and reading it (``load``, the only file
I/O of the core's inputs)."""

from engine.agreement.load import (
    Agreement,
    Contact,
    PartyPlan,
    load_agreement,
    read_document,
    sha256_text,
)

__all__ = ["Agreement", "Contact", "PartyPlan", "load_agreement", "read_document", "sha256_text"]
