"""The auditor's fsck: re-check a live database against its own content and signed checkpoints.

Everything that answers a query is checked against what the log commits to, in one pass over
each tenant's rows (``_run``):

* each row's content and salts against its stored leaf (``_events``; the C part vouches for the
  common row first, ``storage._audit_chunk``, and ``_leaves`` is the Python path's fast case);
* the copies derived from that content: query columns, full-text rows (``_events``), facet
  rollups recounted (``_rollups``), erasures against their ``event.redact`` records
  (``_redactions``);
* positions with no row, and rows past the tree head (``_run``);
* the stored tree: every interior node, the head (``_tree``);
* every checkpoint: signature, root against the leaves, gaps no checkpoint covers, and any
  checkpoint held outside the database (``_checkpoints``).

It reads the database directly, trusts none of it, and reports each real problem once, naming
the tenant, position and event (``_report``).
"""

from __future__ import annotations

from ._report import AuditReport, Problem
from ._run import DEFAULT_MAX_GAP, audit_tenant

__all__ = ["DEFAULT_MAX_GAP", "AuditReport", "Problem", "audit_tenant"]
