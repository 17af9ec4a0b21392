"""The people's pages: each person's home, the model pages and their personal API tokens.

The top of the domain: it reads the registry, approvals, reports and the audit log, and
changes nothing except through their services."""
