"""The agreement file: its shape and wording (``schema``) and reading it (``load``, the only file
I/O of the core's inputs)."""

from engine.agreement.load import (
    MAX_DOCUMENT_BYTES,
    MAX_FILE_BYTES,
    load_agreement,
    read_document,
    sha256_text,
)
from engine.agreement.schema import (
    Agreement,
    Contact,
    LanguageText,
    PartyPlan,
    check_contact,
    check_signatory,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_FILE_BYTES",
    "Agreement",
    "Contact",
    "LanguageText",
    "PartyPlan",
    "check_contact",
    "check_signatory",
    "load_agreement",
    "read_document",
    "sha256_text",
]
