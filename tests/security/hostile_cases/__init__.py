"""The hostile case tables, one data module per family; :data:`CASES` is all of them.

Cases built from byte-level surgery on valid files (manifest, offsets, dtypes) carry a
payload in their object graph too, so that a loader which skipped a check would run it.
The builders they share are in :mod:`hostile_cases.build`.
"""

from __future__ import annotations

from hostile_cases.arrays import ARRAY_CASES
from hostile_cases.code_execution import CODE_CASES
from hostile_cases.container import CONTAINER_CASES
from hostile_cases.foreign import FOREIGN_CASES
from hostile_cases.manifest import MANIFEST_CASES
from hostile_cases.names import NAME_CASES
from hostile_cases.offsets import OFFSET_CASES
from hostile_cases.reconstructors import RECONSTRUCTOR_CASES
from hostile_cases.resources import RESOURCE_CASES
from hostile_cases.side_effects import SIDE_EFFECT_CASES
from hostile_cases.streams import STREAM_CASES
from hostile_cases.trees import TREE_CASES

CASES = (
    CODE_CASES
    + NAME_CASES
    + STREAM_CASES
    + RECONSTRUCTOR_CASES
    + CONTAINER_CASES
    + MANIFEST_CASES
    + OFFSET_CASES
    + ARRAY_CASES
    + RESOURCE_CASES
    + SIDE_EFFECT_CASES
    + TREE_CASES
    + FOREIGN_CASES
)
