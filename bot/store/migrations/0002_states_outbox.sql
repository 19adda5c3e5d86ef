-- Conversation states (one row per chat) and the notification outbox.

CREATE TABLE conversation_states (
    key        text PRIMARY KEY,          -- "telegram:12345"
    state      json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    id          text GENERATED ALWAYS AS (lpad(seq::text, 12, '0')) STORED UNIQUE,
    status      text NOT NULL CHECK (status IN ('pending', 'claimed', 'sent', 'blocked', 'parked')),
    attempts    integer NOT NULL DEFAULT 0,
    created_at  text NOT NULL,
    next_at     text NOT NULL,
    lease_until text,
    sent_at     text,
    last_error  text,
    case_id     text,
    body        json NOT NULL             -- every other field, opaque to the store
);
CREATE INDEX outbox_pending ON outbox (next_at, seq) WHERE status = 'pending';
CREATE INDEX outbox_claimed ON outbox (lease_until, seq) WHERE status = 'claimed';
CREATE INDEX outbox_case ON outbox (case_id, seq);
CREATE INDEX outbox_status ON outbox (status, seq);
