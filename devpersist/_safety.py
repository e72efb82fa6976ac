"""The allowlist engine: which globals a file may name, decided before anything is imported.

Step 3 of a load (parse -> audit -> **resolve** -> place -> read -> construct). A name
is a ``(module, qualname)`` pair as pickle writes it. Its verdict, in order:

1. malformed strings are refused; names in ``trusted=`` (from the caller, never from the
   file) are admitted; so are the names the rule table admits
   (:data:`devpersist._rule_table.ADMITTED`: builtins containers, numpy dtypes and
   scalars, scipy sparse formats, devpersist's own reconstructors...), some mapped to a
   checking substitute;
2. names on the never list (:func:`devpersist._rules.never`) are refused;
3. names of the derived table (:func:`devpersist._rules.derived`: classes,
   reconstructors, metric functions and ufuncs found in the installed libraries by
   ``python -m devpersist._derive``) are admitted, and so, by the class rule, is any
   plain-identifier class of a scikit-learn, sklearnex or daal4py module on that table's
   fixed list that derives from an estimator or fitted-state base;
4. everything else is refused, with a :class:`~devpersist._rules.Refusal` (its kind and
   text).

Steps 1-2, and whether step 3 can apply, are decided by the strings alone. Only then is
a module imported, and only a module on the fixed list: a file cannot make devpersist
import a module (``sklearnex.__main__``, a test module) by naming it. Then each admitted
name's *use* (reference, call, fresh) is checked against what the audit saw the stream
do. This module holds the engine only; the data is :mod:`devpersist._rule_table` and
:mod:`devpersist._rules`.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _rules
from ._exceptions import UntrustedTypeError
from ._replay import Record
from ._rule_table import ADMITTED, CALL, FRESH, REF, Use
from ._rules import Refusal
from ._trust import (
    DangerouslyTrusted,
    dangerously_trust,
    dotted,
    normalize_trusted,
    resolve_trusted,
)

Name = tuple[str, str]
Resolver = Callable[[], Any]

__all__ = [
    "CALL", "EXACT", "FRESH", "REF", "RULE_PACKAGES", "DangerouslyTrusted", "audit_refusals",
    "check_uses", "dangerously_trust", "dotted", "normalize_trusted", "prescreen", "refusals",
    "refused", "resolve", "untrusted", "use_of", "use_refusals", "verdict",
]  # fmt: skip

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*\Z")
_PLAIN_NAME_RE = re.compile(rf"{_IDENT}\Z")

#: The names the rule table admits (kept under its former name for callers and tests).
EXACT = ADMITTED
RULE_PACKAGES = _rules.RULE_PACKAGES
_KIND_USE: dict[str, Use] = {"class": FRESH, "reconstructor": FRESH, "function": REF,
                             "ufunc": REF}  # fmt: skip


def use_of(name: Name, obj: Any, trusted: frozenset[str]) -> Use:
    """How the stream may use an approved global: REF, CALL or FRESH."""
    rule = ADMITTED.get(name)
    if rule is not None and rule.use is not None:
        return rule.use
    if dotted(name) in trusted:
        return FRESH  # the caller vouches for it
    derived_kind = _rules.derived_kind(*name)
    if derived_kind is not None:
        return _KIND_USE[derived_kind]
    return FRESH if isinstance(obj, type) else REF


# --------------------------------------------------------------------------- verdicts


def _well_formed(name: Any) -> bool:
    return (
        isinstance(name, tuple)
        and len(name) == 2
        and all(isinstance(p, str) for p in name)
        and _MODULE_RE.match(name[0]) is not None
        and _MODULE_RE.match(name[1]) is not None
    )


def _label(name: Any) -> str:
    return dotted(name) if _well_formed(name) else repr(name)


def _rule_candidate(module: str, name: str) -> bool:
    """A rule by kind may apply (a class of a library module, or a ufunc re-exported by a
    module on the list: pickle names a ufunc after the first module it finds it in):
    judged from the strings alone."""
    return (
        _rules.on_fixed_list(module)
        and _PLAIN_NAME_RE.match(name) is not None
        and not name.startswith("__")
    )


_string_verdicts: dict[Any, Refusal | None] = {}


def _string_verdict(name: Any, trusted: frozenset[str]) -> Refusal | None:
    """Why ``name`` is refused by its strings alone (nothing imported), or None."""
    if not _well_formed(name):
        return Refusal("malformed")
    if dotted(name) in trusted:
        return None
    try:
        return _string_verdicts[name]
    except KeyError:
        why = _string_verdicts[name] = _untrusted_string_verdict(name)
        if len(_string_verdicts) > 65536:  # file-chosen names: keep the cache bounded
            _string_verdicts.clear()
        return why


def _untrusted_string_verdict(name: Name) -> Refusal | None:
    module, qualname = name
    if name in ADMITTED:
        return None
    why = _rules.never(dotted(name))
    if why is not None:
        return Refusal("never", why=why)
    if _rules.module_forbidden(module):
        return Refusal("not_listed")
    if _rules.derived_kind(module, qualname) is not None or _rule_candidate(module, qualname):
        return None
    if _rules.on_fixed_list(module) or module.partition(".")[0] not in (
        *_rules.RULE_PACKAGES,
        "onedal",
    ):
        return Refusal("not_listed")
    return Refusal("module_not_listed", made_from=_rules.made_from())


_verdicts: dict[Name, tuple[Any, Refusal | None]] = {}
_NOT_FOUND: Any = object()


def _import_listed(module: str) -> Any:
    """Import a module on the fixed list (never anything else)."""
    if not _rules.on_fixed_list(module):
        raise AssertionError(f"{module} is not on the fixed list")  # pragma: no cover
    return importlib.import_module(module)


def _is_ufunc(obj: Any) -> bool:
    """A numpy ufunc, or scipy.special's array API wrapper of one (it only picks the
    input's namespace and calls that library's version of the same function)."""
    ufunc = getattr(sys.modules.get("numpy"), "ufunc", None)
    if ufunc is None:
        return False
    if isinstance(obj, ufunc):
        return True
    wrapped = getattr(obj, "__wrapped__", None)
    code = getattr(obj, "__code__", None)
    return (
        isinstance(wrapped, ufunc)
        and wrapped.__name__ == getattr(obj, "__name__", None)
        and code is not None
        and code.co_filename.replace("\\", "/").endswith(
            "scipy/special/_support_alternative_backends.py"
        )
    )


def _library_verdict(module: str, name: str) -> tuple[Any, Refusal | None]:
    """Import the (listed) module, then check the object: (object, None) or (None, why)."""
    try:
        mod = _import_listed(module)
    except Exception:  # a listed module that fails to import here is not admitted
        return None, Refusal("not_importable")
    obj = getattr(mod, name, _NOT_FOUND)
    if obj is _NOT_FOUND:
        return None, Refusal("missing")
    kind = _rules.derived_kind(module, name)
    if kind is None and _is_ufunc(obj):
        return obj, None
    if kind == "class" or (kind is None and isinstance(obj, type)):
        own = getattr(obj, "__module__", None)
        if not isinstance(obj, type) or not isinstance(own, str):
            return None, Refusal("not_estimator")
        if kind is None:  # the class rule: a class of a listed module, of a listed base
            if (
                module.partition(".")[0] not in _rules.RULE_PACKAGES
                or not _rules.on_fixed_list(own)
                or not issubclass(obj, _rules.bases())
            ):
                return None, Refusal("not_estimator")
        return obj, None
    if kind == "ufunc":
        return (obj, None) if _is_ufunc(obj) else (None, Refusal("missing"))
    if kind in ("function", "reconstructor") and callable(obj):
        return obj, None
    return None, Refusal("not_estimator")


def _constant(obj: Any) -> Resolver:
    return lambda: obj


def verdict(
    name: Name, trusted: frozenset[str] = frozenset(), imports: bool = True
) -> tuple[Resolver | None, Refusal | None]:
    """``(resolver, None)`` for an admitted name, ``(None, reason)`` for a refused one.

    Only modules on the fixed list (or named in ``trusted``) are imported, and only after
    the strings passed; verdicts on library names are cached for the process. With
    ``imports=False`` the derived table is believed without importing its modules (only
    the class rule, for a name the table lacks, imports the module it needs); the
    resolver is then None.
    """
    why = _string_verdict(name, trusted)
    if why is not None:
        return None, why
    rule = ADMITTED.get(name)
    if rule is not None:
        return rule.resolve, None
    if dotted(name) in trusted:
        return (lambda: resolve_trusted(*name)), None
    if not imports and _rules.derived_kind(*name) is not None:
        return None, None
    cached = _verdicts.get(name)
    if cached is None:
        if len(_verdicts) > 65536:  # file-chosen names: keep the cache bounded
            _verdicts.clear()
        cached = _verdicts[name] = _library_verdict(*name)
    obj, why = cached
    return (None, why) if why is not None else (_constant(obj), None)


def refusals(names: Iterable[Any], trusted: frozenset[str] = frozenset()) -> dict[str, Refusal]:
    """Each refused name (``"module.qualname"``) with the reason."""
    out = {}
    for name in names:
        _, why = verdict(name, trusted)
        if why is not None:
            out[_label(name)] = why
    return dict(sorted(out.items()))


def untrusted(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> list[str]:
    """The names outside the allowlist, as sorted ``"module.qualname"`` strings."""
    return list(refusals(names, trusted))


_resolved: dict[tuple[frozenset[Name], frozenset[str]], dict[Name, Any]] = {}


def resolve(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> dict[Name, Any]:
    """Check every name first, then import and return them; raise if any is untrusted.

    Verdicts depend only on the names and ``trusted``, so a set seen before is answered
    from a cache (serving loads the same model file over and over).
    """
    key = (frozenset(names), trusted)
    approved = _resolved.get(key)
    if approved is None:
        approved = _resolve(key[0], trusted)
        if len(_resolved) < 256:
            _resolved[key] = approved
    return approved


def _resolve(names: Iterable[Name], trusted: frozenset[str]) -> dict[Name, Any]:
    verdicts = {n: verdict(n, trusted) for n in names}
    bad = {_label(n): why for n, (_, why) in verdicts.items() if why is not None}
    if bad:
        raise refused(bad)
    return {n: resolver() for n, (resolver, _) in verdicts.items() if resolver is not None}


def refused(bad: Mapping[str, str], what: str = "refers to") -> UntrustedTypeError:
    """The error for refused names, each with its reason (a :class:`Refusal`; file
    strings escaped)."""
    lines = "".join(f"\n  - {name!a}: {why}" for name, why in sorted(bad.items()))
    never = any(getattr(why, "kind", None) == "never" for why in bad.values())
    advice = ("Names on the never list cannot be trusted. " if never else "") + (
        "Check each other name yourself before passing it in trusted=[...]; "
        "docs/security.md says what the allowlist admits and why."
    )
    return UntrustedTypeError(
        f"the file {what} names the allowlist does not admit:{lines}\nNothing was loaded. "
        + advice,
        untrusted=sorted(bad),
        reasons={name: str(why) for name, why in sorted(bad.items())},
    )


def prescreen(names: Iterable[Name], trusted: frozenset[str] = frozenset()) -> None:
    """Reject, by the strings alone, names that no rule could allow (imports nothing)."""
    bad = {}
    for name in names:
        why = _string_verdict(name, trusted)
        if why is not None:
            bad[_label(name)] = why
    if bad:
        raise refused(bad)


def use_refusals(
    called: Iterable[Name],
    modified: Iterable[Name],
    approved: dict[Name, Any],
    trusted: frozenset[str] = frozenset(),
    called_results: Iterable[Name] = (),
) -> dict[str, Refusal]:
    """Approved names the stream uses in ways their rule forbids, with the reason."""
    bad: dict[str, Refusal] = {}
    for origin in sorted(called_results, key=str):
        bad[_label(origin)] = Refusal("called_result")
    for origin in sorted(called, key=str):
        if origin in approved and use_of(origin, approved[origin], trusted) == REF:
            rule = ADMITTED.get(origin)
            if rule is not None:  # the table says why it is a reference
                bad[_label(origin)] = Refusal("called_rule_reference", why=rule.why)
            else:
                why = "could allocate without bound or run what it names"
                bad[_label(origin)] = Refusal("called_reference", why=why)
    for origin in sorted(modified, key=str):
        if origin in approved and use_of(origin, approved[origin], trusted) != FRESH:
            bad.setdefault(_label(origin), Refusal("modified"))
    return bad


def check_uses(called: Iterable[Name], modified: Iterable[Name], approved: dict[Name, Any],
               trusted: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Every called global must be a constructor, every modified result a fresh object."""
    bad = use_refusals(called, modified, approved, trusted)
    if bad:
        raise refused(bad, what="uses")


_audit_refusals: dict[
    tuple[frozenset[Name], frozenset[Name], frozenset[Name], frozenset[Name], frozenset[str]],
    dict[str, str],
] = {}


def audit_refusals(result: Record, trusted: frozenset[str] = frozenset()) -> dict[str, str]:
    """Everything :func:`devpersist.load` would refuse in an audited stream, with reasons:
    names, then the uses of the admitted ones. Imports nothing for names in the tables
    (only the class rule imports a module, from the fixed list). Each reason is a
    :class:`~devpersist._rules.Refusal` (a ``str`` with its ``kind``). Cached: saving the
    same kind of model again costs a dict lookup."""
    key = (
        frozenset(result.names),
        frozenset(result.called),
        frozenset(result.modified),
        frozenset(result.called_results),
        trusted,
    )
    found = _audit_refusals.get(key)
    if found is None:
        found = _audit_refusals_of(result, trusted)
        if len(_audit_refusals) < 256:
            _audit_refusals[key] = found
    return dict(found)


def _audit_refusals_of(result: Record, trusted: frozenset[str]) -> dict[str, str]:
    bad: dict[str, str] = {}
    approved: dict[Name, Any] = {}
    for name in result.names:
        resolver, why = verdict(name, trusted, imports=False)
        if why is not None:
            bad[_label(name)] = why
        elif name in ADMITTED or dotted(name) in trusted or resolver is None:
            approved[name] = None  # its use is known without the object
        else:
            approved[name] = resolver()
    bad.update(
        use_refusals(result.called, result.modified, approved, trusted, result.called_results)
    )
    return dict(sorted(bad.items()))
