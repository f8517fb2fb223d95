"""The documents made from a round's certificate: its HTML page, its PDF, and the evidence pack.

One template (``templates/web/certificate.html.j2``, in the package ``ratify_templates``) serves
the web page and the PDF; it is self-contained, and WeasyPrint renders it with a fetcher that
refuses every URL but ``data:``, so making a PDF never reaches the network.

The evidence pack is a zip an auditor can check with no ratify at all: every text, every minutes
extract, the log as JSONL, the certificate, a README.txt with the hash rule and a short program
that checks the chain, and SHA256SUMS. It is deterministic: the same round gives the same bytes
(members in a fixed order, each dated at the log's last entry).
"""

from __future__ import annotations

import functools
import hashlib
import io
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import Engine

from engine.core.chain import GENESIS, Entry
from engine.core.export import to_jsonl
from engine.errors import InvalidInput, VerificationFailed
from engine.runtime.certificate import Certificate, certify, read_sources
from notifications.render import LANGUAGES as RENDER_LANGUAGES
from notifications.render import write_date, write_moment

__all__ = [
    "LANGUAGES",
    "VERIFY_PROGRAM",
    "FilesOf",
    "KeptFile",
    "certificate_pdf",
    "evidence_pack",
    "render_certificate_html",
]

TEMPLATES = Path(str(resources.files("ratify_templates") / "web"))
# As the emails write dates: Finland's Swedish for sv.
LANGUAGES = RENDER_LANGUAGES  # the emails' languages: fi, sv, en
_Width = Literal["full", "long", "medium", "short"]


class KeptFile(Protocol):
    """A file kept with a round (a minutes extract), as ``engine.runtime.files`` returns it."""

    @property
    def sha256(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...


FilesOf = Callable[[Engine, str], Sequence[KeptFile]]


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInput(
            f"{{opt.language}} {language!r}: use one of {', '.join(LANGUAGES)}", field="language"
        )


def render_certificate_html(cert: Certificate, language: str) -> str:
    """The certificate as one self-contained HTML document in ``language`` (fi, sv or en)."""
    _check_language(language)
    template = _environment().get_template("certificate.html.j2")
    return template.render(cert=cert, language=language)


def certificate_pdf(cert: Certificate, language: str) -> bytes:
    """The certificate as an A4 PDF, its footer naming the round, the head hash and the page."""
    html = render_certificate_html(cert, language)
    # Imported here: WeasyPrint takes a second to import, and only this needs it.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=("data",), allow_redirects=False)
    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    return pdf


def evidence_pack(
    engine: Engine, ref: str, language: str | None = None, *, files: FilesOf | None = None
) -> bytes:
    """The round's evidence pack, a zip (see the module's docstring), its certificate in
    ``language`` (by default the round's).

    ``files``: where the minutes extracts come from (by default ``engine.runtime.files``). Every
    file a log entry names must be there, with the bytes of its SHA-256, or the pack is refused
    with :class:`VerificationFailed` naming it."""
    if language is not None:
        _check_language(language)
    sources = read_sources(engine, ref)
    language = language or sources.language
    cert = certify(engine, sources)
    kept = list((files or _round_files)(engine, sources.round))
    named = {
        step.minutes.sha256: step.minutes.filename
        for party in cert.parties
        for step in party.steps
        if step.minutes is not None
    }
    by_hash = {}
    for item in kept:
        if item.sha256 not in named:
            continue  # kept after these entries were read (an open round): not this log's
        if hashlib.sha256(item.data).hexdigest() != item.sha256:
            raise VerificationFailed(
                f"round {cert.round}: the kept file {item.filename!r} does not match its SHA-256 "
                f"{item.sha256[:16]}…; it was changed"
            )
        by_hash[item.sha256] = item
    if missing := sorted(set(named) - set(by_hash)):
        raise VerificationFailed(
            f"round {cert.round}: the log names minutes extract(s) that are not kept: "
            + ", ".join(f"{named[sha]} ({sha[:16]}…)" for sha in missing)
        )
    members: list[tuple[str, bytes]] = [
        ("certificate.pdf", certificate_pdf(cert, language)),
        ("certificate.html", render_certificate_html(cert, language).encode("utf-8")),
        ("log.jsonl", to_jsonl(sources.entries).encode("utf-8")),
    ]
    for text in sources.texts:
        # Its UTF-8 bytes: what its SHA-256 was taken of (engine.agreement.sha256_text); in
        # several languages, each one's (their combined hash: engine.core.chain.combined_sha256).
        given: list[tuple[str | None, str, str]] = [
            (t.language, t.source, t.text) for t in text.texts
        ]
        for language, source, body in given or [(None, text.source, text.text)]:
            shown = _plain(source, "agreement.md")
            name = (
                f"documents/v{text.version}-{language}-{shown}"
                if language
                else (f"documents/v{text.version}-{shown}")
            )
            members.append((name, body.encode("utf-8")))
    for sha, item in sorted(by_hash.items()):
        members.append((f"minutes/{sha[:12]}-{_plain(item.filename, 'minutes.pdf')}", item.data))
    members.insert(0, ("README.txt", readme(cert, [name for name, _ in members]).encode("utf-8")))
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members)
    members.append(("SHA256SUMS", sums.encode("utf-8")))
    return _zip(members, _stamp(cert, sources.entries[-1]))


def _round_files(engine: Engine, round_id: str) -> Sequence[KeptFile]:
    from engine.runtime.files import round_files

    return round_files(engine, round_id)


def _plain(name: str, fallback: str) -> str:
    """A name safe as the last part of a zip member's path: no folders, no control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name if name.strip(".") else fallback


def _stamp(cert: Certificate, last_entry: Entry) -> tuple[int, int, int, int, int, int]:
    """The members' date: the log's last entry, local to the round (a zip's times are local)."""
    last = datetime.fromisoformat(last_entry["recorded_at"]).astimezone(ZoneInfo(cert.timezone))
    if last.year < 1980:  # the earliest a zip can date a file
        return (1980, 1, 1, 0, 0, 0)
    return (last.year, last.month, last.day, last.hour, last.minute, last.second)


def _zip(members: Sequence[tuple[str, bytes]], stamp: tuple[int, int, int, int, int, int]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the machine: the same bytes everywhere
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return out.getvalue()


# The program README.txt gives an auditor: Python's standard library only. It must say INTACT for
# an export of ratify's and BROKEN for any change to it (tests/test_certificate.py runs it).
VERIFY_PROGRAM = """\
import hashlib, json, sys

def unique(pairs):  # a key given twice could be read two ways: refuse it
    if len({key for key, _ in pairs}) != len(pairs):
        sys.exit("BROKEN: an object names a key twice")
    return dict(pairs)

prev, count = "0" * 64, 0
with open(sys.argv[1], "rb") as export:
    for line in export.read().split(b"\\n"):
        if not line.strip():
            continue
        entry = json.loads(line, object_pairs_hook=unique)
        count += 1
        body = {key: value for key, value in entry.items() if key != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        if entry["seq"] != count or entry["prev_hash"] != prev or digest != entry["hash"]:
            sys.exit(f"BROKEN at entry #{count}: changed, or not the one that follows #{count - 1}")
        prev = entry["hash"]
if count == 0:
    sys.exit("BROKEN: no entries")
print(f"INTACT: {count} entries; head {prev}")
"""
PROGRAM_BEGINS = "---- verify_log.py ----"
PROGRAM_ENDS = "---- end of verify_log.py ----"


def readme(cert: Certificate, names: Sequence[str]) -> str:
    """README.txt: what the pack holds and how to check it without ratify."""
    listing = "\n".join(f"  {name}" for name in ["README.txt (this file)", *names, "SHA256SUMS"])
    status = (
        f"The agreement is in force from {cert.effective_date:%Y-%m-%d}."
        if cert.complete and cert.effective_date
        else f"NOT a certificate of completion: the round is {cert.state}"
        + ("" if cert.chain.verified else ", and its log did not verify when this was made")
        + "."
    )
    documents = "\n".join(
        f"  v{d.version}  {d.sha256}  "
        + ("entry #1 (launch)" if d.version == 1 else f"the amend entry with version {d.version}")
        + "".join(f"\n        {t.language}  {t.sha256}  {t.source}" for t in d.texts)
        for d in cert.documents
    )
    if any(d.texts for d in cert.documents):
        documents += (
            "\nA version in several languages (its languages listed under it) has each text's "
            'own SHA-256,\nand the version\'s is the SHA-256 of the lines "<language> <sha256>\\n" '
            "of its texts, sorted\nby language code (documents/v<version>-<language>-<file>): "
            "approvals bind to that."
        )
    return f"""\
Evidence pack of round {cert.round}: {cert.title}
{"=" * 72}

{status}
The log holds {cert.chain.entries} entries; its head (the hash of the last entry) is
  {cert.chain.head}

Contents
--------
{listing}

certificate.pdf and certificate.html state the round as its log records it. log.jsonl is the
log itself, one entry a line: the evidence. Everything below can be checked with no ratify.

1. Check the files
------------------
  sha256sum -c SHA256SUMS

Each text's SHA-256 is taken of its UTF-8 bytes, and the log names it: version 1 is the
document_sha256 of entry #1 (the launch); each later version the document_sha256 of the round's
"amend" entry whose evidence has that "version". Every entry carries the document_sha256 of the
text current when it was recorded, so each decision and signature names the text it concerns:
{documents}

A minutes extract is named by its SHA-256 in the evidence of the decision it came with
("minutes_sha256", "minutes_file"); its file here is minutes/<first 12 hex digits>-<file name>.

2. Check the log's hash chain
-----------------------------
Each line of log.jsonl is a JSON object with the keys seq, round, party, event, from_state,
to_state, actor, recorded_at (UTC), clock, evidence, document_sha256, prev_hash and hash.

- "hash" is the SHA-256, in lowercase hex, of the canonical JSON of every other key of the
  entry, encoded as UTF-8. Canonical: the keys of every object sorted by code point (the
  evidence's too), no whitespace between tokens (separators "," and ":"), characters beyond
  ASCII written as themselves; in strings only '"' and '\\' are escaped, and the control
  characters below U+0020 (as \\n, \\r, \\t, \\b, \\f, else \\u00xx in lowercase hex).
  In Python:
    json.dumps(entry_without_hash, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
- "prev_hash" is the previous entry's "hash"; the first entry's is 64 zeros:
    {GENESIS}
- "seq" counts the entries from 1, with no gap.
- "recorded_at" is UTC; the certificate shows the times in the round's zone ({cert.timezone}).

This program (Python 3, standard library only) checks all three. Save the lines between the
markers as verify_log.py and run: python3 verify_log.py log.jsonl
It prints INTACT and the head, or BROKEN and the first entry that is not as written.

{PROGRAM_BEGINS}
{VERIFY_PROGRAM}{PROGRAM_ENDS}

3. Compare the head
-------------------
A chain proves its own order and content, not that it is the chain that was written: whoever
could write the database could have re-chained every entry. Compare the head printed above and
by the program with a copy kept where the database's administrators cannot write (the witness
email of each day and of the activation, or a head noted with `ratify audit head`). A head noted
earlier must be the hash of one of the entries; if it is not, the log was rewritten or cut short.
With ratify: ratify audit verify --file log.jsonl --expect-head HASH
"""


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = _date_filter
    env.filters["datetime"] = _datetime_filter
    env.filters["css_string"] = _css_string
    return env


@pass_context
def _date_filter(context: Context, value: date, width: _Width = "medium") -> str:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"the date filter takes a date, not {value!r}")
    return write_date(value, context["language"], width)


@pass_context
def _datetime_filter(context: Context, value: datetime, width: _Width = "medium") -> str:
    """The date and the time to the minute, as the value's own zone has them (the round's)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise TypeError(f"the datetime filter takes an aware datetime, not {value!r}")
    return write_moment(value, context["language"], width)


def _css_string(value: object) -> Markup:
    """``value`` for inside a double-quoted CSS string in a <style> element, which HTML does not
    unescape: quotes, backslashes and what could end the element are CSS escapes instead."""
    out = []
    for ch in str(value):
        if ch in '"\\<>&' or unicodedata.category(ch)[0] == "C":
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return Markup("".join(out))
