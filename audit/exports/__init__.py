"""Export bundles (AUDIT_SPEC.md section 6): the zip a regulator verifies offline, as
``docs/audit-bundle.md`` specifies it, and the export jobs of the API. The bundle format is
``format``, the reads ``selectors``, the writes ``services``; their public names are
re-exported here. How a bundle is written and recorded is in ``docs/audit-exports.md``."""

from audit.exports.format import (
    CONSISTENCY,
    FORMAT,
    FULL,
    INCLUSION,
    MANIFEST,
    PARTIAL,
    RECORDS,
    Bundle,
    ExportFilter,
    export_filter,
)
from audit.exports.selectors import (
    EXPORT_PERMISSION,
    audit_export_file,
    audit_export_get,
    audit_export_list,
    audit_exports_unstarted,
    export_permitted,
)
from audit.exports.services import (
    EXPORT_FAILED,
    EXPORT_REQUESTED,
    EXPORTED,
    ExportFailed,
    audit_export_request,
    audit_export_run,
    bundle_export,
    bundle_write,
    operator_actor,
)

__all__ = [
    "CONSISTENCY",
    "EXPORTED",
    "EXPORT_FAILED",
    "EXPORT_PERMISSION",
    "EXPORT_REQUESTED",
    "FORMAT",
    "FULL",
    "INCLUSION",
    "MANIFEST",
    "PARTIAL",
    "RECORDS",
    "Bundle",
    "ExportFailed",
    "ExportFilter",
    "audit_export_file",
    "audit_export_get",
    "audit_export_list",
    "audit_export_request",
    "audit_export_run",
    "audit_exports_unstarted",
    "bundle_export",
    "bundle_write",
    "export_filter",
    "export_permitted",
    "operator_actor",
]
