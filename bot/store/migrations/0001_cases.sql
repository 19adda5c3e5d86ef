-- Cases, their append-only history, their reminders.
-- Times are canonical UTC ISO-8601 strings (as the store hands them out),
-- so they sort and compare as text.  `doc` holds the case without its
-- history and reminders, which live in their own tables.

CREATE TABLE cases (
    id          text PRIMARY KEY,
    owner_key   text NOT NULL,             -- "telegram:12345"
    status      text NOT NULL,
    created_at  text NOT NULL,
    updated_at  text NOT NULL,
    closed_at   text,
    history_len integer NOT NULL DEFAULT 0,
    doc         json NOT NULL
);
CREATE INDEX cases_created ON cases (created_at, id);
CREATE INDEX cases_owner ON cases (owner_key, created_at, id);
CREATE INDEX cases_status ON cases (status, created_at, id);
CREATE INDEX cases_closed ON cases ((coalesce(closed_at, updated_at))) WHERE status = 'closed';

-- Append-only: the service's role gets SELECT and INSERT only (docs/postgres.md).
-- Rows go only when their case is purged (ON DELETE CASCADE runs as the table owner).
CREATE TABLE case_history (
    case_id text NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    event   json NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE reminders (
    case_id   text NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    kind      text NOT NULL,
    due       text NOT NULL,
    owner_key text NOT NULL,
    data      json NOT NULL,             -- the whole reminder as handed out
    PRIMARY KEY (case_id, kind)
);
CREATE INDEX reminders_due ON reminders (due, case_id, kind);
CREATE INDEX reminders_owner_due ON reminders (owner_key, due, case_id, kind);

-- Numbers of purged cases: never issued again.
CREATE TABLE retired_case_ids (
    id text PRIMARY KEY
);
