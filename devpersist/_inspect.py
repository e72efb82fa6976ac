"""info / verify / get_untrusted_types / config_context: reading a file without loading it.

Place in the data flow: beside the load path, stopping early. ``info`` parses the
container (header, trailer, manifest); ``get_untrusted_types`` also audits the graph;
``verify`` reads and checks every byte; ``config_context`` applies a file's recorded
configuration. None of them builds the saved object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from . import _codecs, _config
from ._devices import Placement
from ._exceptions import IntegrityError
from ._graph import audit
from ._load import open_container, open_source
from ._safety import audit_refusals, normalize_trusted
from ._save import FileLike
from .arrays import decoded_size


@contextmanager
def config_context(
    file: FileLike | bytes,
    *,
    namespace: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Run a block under the configuration recorded in ``file``.

    For saved objects that are not estimators (a dict of models, say), whose methods
    :func:`load` cannot wrap. ``namespace`` adjusts it as :func:`load` would.
    """
    config = info(file, storage_options=storage_options).get("config")
    if config is not None:
        _config.validate(config)
    _config.prepare_environment(config, namespace)
    with _config.applied(_config.plan(config, Placement(namespace=namespace))):
        yield


def info(
    file: FileLike | bytes, *, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of a file: what it holds, without unpickling or building anything.

    Only the header, the trailer and the manifest are read (three small ranged reads for
    a URL); array bytes are not. ``config["required"]`` is what the model needs (restored
    on load); ``config["sklearn"]``/``["sklearnex"]`` were in force at dump. When some
    estimator's arrays were saved in more than one library or device, the derived key
    ``mixed_placements`` maps its path to those ``[namespace, device]`` pairs.
    ``arrays`` is a list with one dict per array in every format version (version 2
    stores it as columns; a packed array's dict has ``"packed": True``, no
    ``checksum``, and its ``offset`` in the pack).
    """
    with open_source(file, storage_options=storage_options, whole=False) as source:
        container = open_container(source)
        found = {**container.manifest, "file_size": source.size}
    mixed = _config.mixed(found.get("config"))
    if mixed:  # derived, not stored: estimators whose arrays are in several places
        found["mixed_placements"] = mixed
    return found


def get_untrusted_types(
    file: FileLike | bytes,
    *,
    trusted: Iterable[Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Exactly the names :func:`load` (with the same ``trusted``) would refuse.

    The object graph is audited, not loaded: nothing it names is built, and the only
    modules imported are on the allowlist's fixed list (to check a class). Each refused
    name's reason is in ``devpersist.load``'s error (``UntrustedTypeError.reasons``).
    """
    trusted_names = normalize_trusted(trusted)
    with open_source(file, storage_options=storage_options, whole=False) as source:
        container = open_container(source)
        result = audit(container.graph(), len(container.arrays))
    return list(audit_refusals(result, trusted_names))  # imports nothing for table names


def verify(
    file: FileLike | bytes, *, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check every checksum and the whole structure of a file, building nothing.

    Reads every byte: the manifest, the object graph (audited, not loaded), and each
    array (decompressed into scratch memory when compressed, to check its size).

    Returns
    -------
    dict
        ``{"arrays": n, "bytes": size, "untrusted": [...]}`` when the file is intact.

    Raises
    ------
    FormatError, IntegrityError
        What is wrong, and where.
    """
    with open_source(file, storage_options=storage_options) as source:
        container = open_container(source)
        container.check_padding()
        result = audit(container.graph(), len(container.arrays))
        names = result.names
        declared = {tuple(n) for n in container.manifest["globals"]}
        if names != declared:
            raise IntegrityError("the manifest's list of globals does not match the object graph")
        for index, entry in enumerate(container.arrays):
            blob = container.stored_blob(index)
            if "codec" in entry:
                scratch = bytearray(decoded_size(entry))
                _codecs.decompress_stored(entry["codec"], blob, memoryview(scratch))
            else:
                blob.finish()
        return {
            "arrays": len(container.arrays),
            "bytes": source.size,
            "untrusted": list(audit_refusals(result)),
        }
