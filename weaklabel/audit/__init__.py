"""The audit stage: after a first encoder, ask the images which labels can be seen and which
listing-label pairs are wrong (``weaklabel audit``); the files it writes are described in
:mod:`weaklabel.corrections`."""

from .scores import AuditParams
from .stage import audit

__all__ = ["AuditParams", "audit"]
