"""Errors of the image-dedup tool. One base, a small tree; each error names the file it is about.

    DedupError
    ├── InputError            unusable input: bad manifest, bad parameters, missing folder
    ├── ImageError            one file cannot be used as an image (recorded per file, never fatal)
    │   ├── EmptyFileError
    │   ├── NotAnImageError
    │   ├── ImageTooLargeError
    │   └── CorruptImageError
    ├── JournalError          the move journal is inconsistent with the disk
    ├── MoveError             a move could not be done safely (the journal can finish or roll it back)
    └── UploadError           an upload failed after its retries
"""

from __future__ import annotations


class DedupError(Exception):
    """Base of every error this tool raises on purpose."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        message = super().__str__()
        if self.path and self.path not in message:
            return f"{self.path}: {message}"
        return message


class InputError(DedupError):
    """The input as a whole is unusable (manifest, parameters, watched folder)."""


class ImageError(DedupError):
    """One file cannot be used as an image; the run goes on and the file is left as it is."""


class EmptyFileError(ImageError):
    pass


class NotAnImageError(ImageError):
    pass


class ImageTooLargeError(ImageError):
    pass


class CorruptImageError(ImageError):
    pass


class JournalError(DedupError):
    pass


class MoveError(DedupError):
    pass


class UploadError(DedupError):
    pass
