"""The review page: the cardiologist sees the evidence, edits the drafts, scores and signs.

`store` (users, sessions, versions, scores, signatures, audit), `auth` (passwords, sessions,
CSRF, roles), `studies` (results folder or the service's data), `changes` (what an edit changed
in the structured findings), `signing` (the signed SR back to the PACS), `blind` (reader
studies under random codes), `app` (the FastAPI pages); `angioscribe review serve` runs it.
"""
