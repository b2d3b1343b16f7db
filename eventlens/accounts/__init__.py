"""Accounts: users, organisations, memberships with roles, sessions, personal API keys, invites,
password resets, the login throttle and the audit log (docs/adr/0012-accounts-and-authorization.md).

`policy` is the one place that decides whether a principal may do something; `store` keeps the
accounts in the metadata database next to the projects; `service` is the login flow; `mail`
sends invite and reset links through SMTP when one is configured.
"""

__all__ = ["mail", "passwords", "policy", "service", "store", "throttle"]
