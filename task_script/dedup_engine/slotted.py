"""The engine's slotted dataclasses (fingerprints, proof images, envelopes), pickled and copied without
``dataclasses``' general machinery, which looks their fields up on every call.

Pickled: a fingerprint crosses from a worker process to the deciding one with its fields as they are, each numpy
array as its raw bytes with its type and shape. A worker pickles every fingerprint it makes, and the deciding
process, the run's critical path, unpickles it. Pickle's own way with a slotted dataclass (a list of its fields, by
``dataclasses.fields`` on every call) and with a numpy array (a reconstructor, a ``__setstate__`` and a dtype, each
by name) took 46 us to pickle and 18 us to unpickle a hash fingerprint with its proof image, envelope and
signatures; this takes 36 and 15. An unpickled array is a read-only view of its own bytes object (each array has its
own, so an array kept for the rest of the run holds no other array's memory).

Copied: ``replaced`` is ``dataclasses.replace`` for these classes (no ``__post_init__``, no init-only fields), in a
fifth of its time; the deciding process makes three copies for every image it keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reduce_with_arrays(obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """``__reduce__`` for a slotted dataclass whose fields may hold numpy arrays (nested dataclasses pickle by their
    own ``__reduce__``)."""
    cls = type(obj)
    values = []
    arrays = []
    for position, name in enumerate(cls.__slots__):
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            value = (value.tobytes(), value.dtype.str, value.shape)
            arrays.append(position)
        values.append(value)
    return _rebuilt, (cls, tuple(values), tuple(arrays))


def _rebuilt(cls: type, values: tuple[Any, ...], arrays: tuple[int, ...]) -> Any:
    obj = object.__new__(cls)
    for position, (name, value) in enumerate(zip(cls.__slots__, values)):
        if position in arrays:
            data, dtype, shape = value
            value = np.frombuffer(data, dtype).reshape(shape)
        object.__setattr__(obj, name, value)
    return obj


def replaced(obj: Any, **changes: Any) -> Any:
    """A copy of a slotted (frozen) dataclass with ``changes``, as ``dataclasses.replace`` makes it."""
    cls = type(obj)
    unknown = changes.keys() - set(cls.__slots__)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    copy = object.__new__(cls)
    for name in cls.__slots__:
        object.__setattr__(copy, name, changes[name] if name in changes else getattr(obj, name))
    return copy
