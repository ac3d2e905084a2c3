"""The PostgreSQL schema of a vault, its versions and migrations
(docs/DEPLOYMENT.md §1 and §5).

Everything lives in the schema ``vault`` of one database, owned by the
role that runs ``vault migrate`` (the *owner*). The schema's version is the
largest ``version`` in ``vault.schema_version``; :data:`STEPS` lists, in
order, the migrations that take an empty database to :data:`VERSION`.
:func:`upgrade` applies the missing ones in one transaction (DDL is
transactional in PostgreSQL: an interrupted upgrade leaves the old
version), under an advisory lock so that two upgrades never interleave,
then renews the grants of the application roles recorded in
``vault.app_roles``.

Application roles (the workstations) get exactly what the vault needs:
records that are only ever added (manifest, actors, requests and
approvals, the audit log) get SELECT and INSERT; the audit tables are further
guarded by triggers that reject UPDATE, DELETE and TRUNCATE from anyone,
their owner included (a superuser must disable the triggers first -- which
is the tampering the log's checkpoints and signatures then expose).

Every statement here is a constant; the only identifier ever formatted into
SQL is a role name, quoted by psycopg's ``sql.Identifier``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import psycopg
from psycopg import sql

from vault.errors import UsageError
from vault.store._pg_conn import PINNED, Connection

__all__ = ["AUDIT_LOCK", "FIRST", "FUNCTIONS", "MIGRATE_LOCK", "SAFE_SEARCH_PATH", "STEPS",
           "TRIGGERS", "VERSION", "WRITE_LOCK", "current_version", "grant",
           "schema_problems", "upgrade"]

# Advisory lock keys (docs/DEPLOYMENT.md §1): the vault's write lock
# (session level; shared by sealers), the audit log's append lock and the
# schema upgrade lock (transaction level). "vault" in ASCII, then 1, 2, 3.
WRITE_LOCK = 0x7661756C74_0001
AUDIT_LOCK = 0x7661756C74_0002
MIGRATE_LOCK = 0x7661756C74_0003

# THE MIGRATIONS BELOW ARE NEVER EDITED ONCE SHIPPED. A database an earlier
# release made keeps what that release's text said: a step changed in place
# afterwards changes fresh databases only, and upgraded ones then differ from
# them (``vault doctor`` rightly names the difference). Every change, however
# small, is a new version at the end of STEPS. Versions 12, 14 and 16 were
# edited in place before this rule was written down; version 18 re-creates
# what they made, so that every database ends the same (tests/pg_schemas
# holds each schema as the releases made it).
_STORAGE = r"""
CREATE SCHEMA vault;
CREATE TABLE vault.schema_version (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE vault.app_roles (
    role        name PRIMARY KEY,
    checkpoints boolean NOT NULL
);
CREATE TABLE vault.manifest (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    data bytea NOT NULL
);
CREATE TABLE vault.log_key (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    data bytea NOT NULL
);
CREATE TABLE vault.keyrings (
    okey   text NOT NULL CHECK (okey ~ '^[0-9a-f]{32}$'),
    key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{32}$'),
    data   bytea NOT NULL,
    PRIMARY KEY (okey, key_id)
);
CREATE TABLE vault.actors (
    key_hash   text PRIMARY KEY CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    public_key bytea NOT NULL CHECK (octet_length(public_key) = 32)
);
CREATE TABLE vault.statements (
    kind text NOT NULL CHECK (kind IN ('request', 'approval')),
    name text NOT NULL CHECK (name ~ '^[0-9a-f]{64}$'),
    data bytea NOT NULL CHECK (octet_length(data) <= 1048576),
    PRIMARY KEY (kind, name)
);
CREATE SEQUENCE vault.document_versions;
CREATE TABLE vault.documents (
    id   text NOT NULL CHECK (id ~ '^[a-z2-7]{16}$'),
    tag  text NOT NULL CHECK (tag ~ '^[0-9a-f]{8}$'),
    vid  bigint NOT NULL UNIQUE,
    size bigint NOT NULL CHECK (size >= 0),
    PRIMARY KEY (id, tag)
);
CREATE TABLE vault.document_chunks (
    vid     bigint NOT NULL REFERENCES vault.documents (vid)
            ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    n       integer NOT NULL CHECK (n >= 0),
    data    bytea NOT NULL,
    PRIMARY KEY (vid, n)
);
-- Ciphertext does not compress: store it uncompressed, which also makes
-- substring() read only the TOAST pieces it needs.
ALTER TABLE vault.document_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
"""

_AUDIT = r"""
CREATE TABLE vault.audit_log (
    seq  bigint PRIMARY KEY CHECK (seq >= 0),
    line bytea NOT NULL CHECK (position('\x0a'::bytea IN line) = 0)
);
CREATE TABLE vault.audit_hashes (
    n    bigint PRIMARY KEY CHECK (n >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE TABLE vault.audit_checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    note bytea NOT NULL
);
CREATE FUNCTION vault.append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'vault.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
-- Rows are numbered 0, 1, 2, ... without gaps: each new row must be the next.
CREATE FUNCTION vault.audit_next() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
BEGIN
    IF TG_TABLE_NAME = 'audit_log' THEN
        SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
        IF NEW.seq <> expected THEN
            RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSE
        SELECT coalesce(max(n) + 1, 0) INTO expected FROM vault.audit_hashes;
        IF NEW.n <> expected THEN
            RAISE EXCEPTION 'audit hash % is not the next one (%)', NEW.n, expected
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;
-- One append in one statement (so, in autocommit mode, one transaction):
-- the caller signed its records for line numbers from "first" on; if the log
-- has another length by the time the lock is held, nothing is written and
-- the length is returned so the caller can sign again. Else -1.
CREATE FUNCTION vault.audit_append(first bigint, lines bytea[], first_hash bigint,
                                   hashes bytea[], cp_sizes bigint[], cp_notes bytea[])
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(%(audit_lock)d);  -- AUDIT_LOCK
    SELECT coalesce(max(seq) + 1, 0) INTO head FROM vault.audit_log;
    IF head <> first THEN
        RETURN head;
    END IF;
    INSERT INTO vault.audit_log (seq, line)
        SELECT first + i - 1, lines[i] FROM generate_subscripts(lines, 1) AS i ORDER BY i;
    INSERT INTO vault.audit_hashes (n, hash)
        SELECT first_hash + i - 1, hashes[i] FROM generate_subscripts(hashes, 1) AS i
        ORDER BY i;
    INSERT INTO vault.audit_checkpoints (size, note)
        SELECT cp_sizes[i], cp_notes[i] FROM generate_subscripts(cp_sizes, 1) AS i
        ON CONFLICT (size) DO NOTHING;
    RETURN -1;
END $$;
REVOKE ALL ON FUNCTION vault.audit_append FROM PUBLIC;
-- Under the append lock (until the caller's transaction ends): the log's
-- length, the newest checkpoint's size, and the tree's right edge -- the
-- stored hashes of the perfect subtrees that make up the first "head"
-- leaves, largest first (docs/AUDIT.md §5: subtree (L, i) is hash number
-- N(((i + 1) << L) - 1) + L, with N(x) = 2x - popcount(x)).
CREATE FUNCTION vault.audit_head(OUT head bigint, OUT checkpointed bigint, OUT edge bytea[])
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo bigint := 0;
    leaf bigint;
    lvl integer;
BEGIN
    PERFORM pg_advisory_xact_lock(%(audit_lock)d);  -- AUDIT_LOCK
    SELECT coalesce(max(seq) + 1, 0) INTO head FROM vault.audit_log;
    SELECT coalesce(max(c.size), 0) INTO checkpointed FROM vault.audit_checkpoints AS c;
    edge := '{}';
    FOR lvl IN REVERSE 62..0 LOOP
        IF (head >> lvl) & 1 = 1 THEN
            leaf := lo + (1::bigint << lvl) - 1;  -- the leaf completing the subtree
            edge := edge || (SELECT h.hash FROM vault.audit_hashes AS h WHERE h.n =
                2 * leaf - length(replace(leaf::bit(64)::text, '0', '')) + lvl);
            lo := lo + (1::bigint << lvl);
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION vault.audit_head FROM PUBLIC;
CREATE TRIGGER audit_log_next BEFORE INSERT ON vault.audit_log
    FOR EACH ROW EXECUTE FUNCTION vault.audit_next();
CREATE TRIGGER audit_hashes_next BEFORE INSERT ON vault.audit_hashes
    FOR EACH ROW EXECUTE FUNCTION vault.audit_next();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON vault.audit_log
    FOR EACH ROW EXECUTE FUNCTION vault.append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON vault.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();
CREATE TRIGGER audit_hashes_append_only BEFORE UPDATE OR DELETE ON vault.audit_hashes
    FOR EACH ROW EXECUTE FUNCTION vault.append_only();
CREATE TRIGGER audit_hashes_no_truncate BEFORE TRUNCATE ON vault.audit_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE
    ON vault.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION vault.append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON vault.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();
""".replace("%(audit_lock)d", str(AUDIT_LOCK))

# The stored hashes line NEW.seq adds (docs/AUDIT.md §6), as version 12
# made them (version 15 changes what a conflict does).
_TREE_ROW = r"""CREATE FUNCTION vault.audit_tree_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h pg_catalog.bytea := pg_catalog.sha256('\x00'::pg_catalog.bytea || NEW.line);
    stored pg_catalog.bytea := h;
    lvl pg_catalog.int4 := 0;
    sibling pg_catalog.bytea;
BEGIN
    WHILE ((NEW.seq >> lvl) & 1) = 1 LOOP
        SELECT substring(t.hashes FROM lvl * 32 + 1 FOR 32) INTO sibling
            FROM vault.audit_tree AS t WHERE t.seq = ((NEW.seq >> lvl) << lvl) - 1;
        IF sibling IS NULL OR octet_length(sibling) <> 32 THEN
            RETURN NEW;  -- derived data lagging: readers fall back to the lines
        END IF;
        h := pg_catalog.sha256('\x01'::pg_catalog.bytea || sibling || h);
        stored := stored || h;
        lvl := lvl + 1;
    END LOOP;
    INSERT INTO vault.audit_tree (seq, hashes) VALUES (NEW.seq, stored)
        ON CONFLICT (seq) DO UPDATE SET hashes = excluded.hashes;
    RETURN NEW;
END $$;
"""

# Audit log v2 (docs/AUDIT.md §13). An application role holds INSERT on the
# log, so the database itself refuses rows the log logic would reject: the
# next number, one line, at most MAX_LINE bytes, a JSON object with "v" 2 and
# "seq" its row's number -- or, for a line that is no record (a fragment
# moved in from a folder, §8), a torn record in the same transaction naming
# it. Checkpoints must be UTF-8 and no larger than the log. The derived
# hashes are computed here, by a trigger running as the schema's owner; no
# application role may write them.
_AUDIT_V2 = r"""
DROP TABLE vault.audit_hashes;
DROP TRIGGER audit_log_next ON vault.audit_log;
DROP FUNCTION vault.audit_next();
DROP FUNCTION vault.audit_append(bigint, bytea[], bigint, bytea[], bigint[], bytea[]);
DROP FUNCTION vault.audit_head();
ALTER TABLE vault.audit_log ADD CONSTRAINT audit_log_line_size
    CHECK (octet_length(line) BETWEEN 1 AND 524288);
CREATE TABLE vault.audit_tree (
    seq    bigint PRIMARY KEY CHECK (seq >= 0),
    hashes bytea NOT NULL CHECK (octet_length(hashes) % 32 = 0 AND octet_length(hashes) > 0)
);
-- The line as JSON, or NULL when it is not UTF-8 JSON (a fragment).
CREATE FUNCTION vault.audit_json(line bytea) RETURNS json
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN convert_from(line, 'UTF8')::json;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE FUNCTION vault.audit_is_object(line bytea) RETURNS boolean
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    RETURN coalesce(json_typeof(vault.audit_json(line)) = 'object', false);
CREATE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
    doc json;
BEGIN
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT vault.audit_is_object(NEW.line) THEN
        RETURN NEW;  -- a fragment: audit_named checks it at commit
    END IF;
    doc := vault.audit_json(NEW.line);
    IF json_typeof(doc -> 'v') IS DISTINCT FROM 'number' OR doc ->> 'v' <> '2'
            OR json_typeof(doc -> 'seq') IS DISTINCT FROM 'number'
            OR doc ->> 'seq' <> NEW.seq::text THEN
        RAISE EXCEPTION 'audit line % is not a version 2 record numbered %', NEW.seq, NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
-- At commit: a line that is no record must be set aside by a torn record
-- of the same transaction naming its number, length and SHA-256.
CREATE FUNCTION vault.audit_named() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM vault.audit_log AS t,
                      json_array_elements(vault.audit_json(t.line) -> 'fragments') AS f
        WHERE t.seq > NEW.seq AND t.seq <= NEW.seq + 4097
          AND vault.audit_is_object(t.line)
          AND vault.audit_json(t.line) ->> 'action' = 'torn'
          AND f ->> 'seq' = NEW.seq::text
          AND f ->> 'length' = octet_length(NEW.line)::text
          AND f ->> 'sha256' = encode(sha256(NEW.line), 'hex')) THEN
        RAISE EXCEPTION 'audit line % is not a record and no torn record sets it aside',
            NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
-- The stored hashes line NEW.seq adds (docs/AUDIT.md §6): its leaf hash,
-- then each perfect subtree it completes. Runs as the schema's owner.
@TREE_ROW@REVOKE ALL ON FUNCTION vault.audit_tree_row() FROM PUBLIC;
CREATE TRIGGER audit_log_1_check BEFORE INSERT ON vault.audit_log
    FOR EACH ROW EXECUTE FUNCTION vault.audit_check_line();
CREATE TRIGGER audit_log_2_tree BEFORE INSERT ON vault.audit_log
    FOR EACH ROW EXECUTE FUNCTION vault.audit_tree_row();
CREATE CONSTRAINT TRIGGER audit_log_named AFTER INSERT ON vault.audit_log
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NOT vault.audit_is_object(NEW.line)) EXECUTE FUNCTION vault.audit_named();
CREATE FUNCTION vault.audit_check_checkpoint() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.size > (SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_log) THEN
        RAISE EXCEPTION 'checkpoint % is larger than the audit log', NEW.size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    PERFORM convert_from(NEW.note, 'UTF8');
    RETURN NEW;
END $$;
CREATE TRIGGER audit_checkpoints_check BEFORE INSERT ON vault.audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION vault.audit_check_checkpoint();
""".replace("@TREE_ROW@", _TREE_ROW)

# An actor row is self-certifying (the key hash is the SHA-256 of the key,
# DESIGN.md §9.1): a row planted under an honest user's hash with another
# key would keep theirs out (an insert is exclusive), and their records
# would then fail verification. The database refuses such a row; rows an
# earlier version let in were never believed by a reader and are dropped.
_ACTORS_V13 = r"""
DELETE FROM vault.actors WHERE key_hash <> encode(sha256(public_key), 'hex');
ALTER TABLE vault.actors ADD CONSTRAINT actors_key_hash
    CHECK (key_hash = encode(sha256(public_key), 'hex'));
"""

# What one application role must not take from the others (THREAT-MODEL.md §6):
# * a document version number (vid) drawn ahead of the sequence, so that
#   every later seal's number is already taken: a row's vid must have been
#   drawn, and is never changed; rows an earlier version let in ahead of the
#   sequence are no version any writer made, and are dropped;
# * the name a request or approval will be left under: a statement is
#   named by the SHA-256 of its bytes (FORMAT.md §13.8), which hold its
#   signature, so no one else can plant a row under it first (rows left
#   before this version keep their names);
# * every reader's memory, by checkpoint notes of any size: a note is at
#   most 64 KiB (a checkpoint is a few hundred bytes); a reader takes no
#   more of one stored before this version.
_V14 = r"""
CREATE FUNCTION vault.documents_vid() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    drawn pg_catalog.int8;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.vid <> OLD.vid THEN
            RAISE EXCEPTION 'a document version number is never changed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO drawn
        FROM vault.document_versions;
    IF NEW.vid < 1 OR NEW.vid > drawn THEN
        RAISE EXCEPTION 'document version number % was not drawn from its sequence', NEW.vid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vault.documents_vid() FROM PUBLIC;
CREATE TRIGGER documents_vid BEFORE INSERT OR UPDATE ON vault.documents
    FOR EACH ROW EXECUTE FUNCTION vault.documents_vid();
DELETE FROM vault.documents WHERE vid > (
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM vault.document_versions);
ALTER TABLE vault.statements ADD CONSTRAINT statements_named
    CHECK (name = encode(sha256(data), 'hex')) NOT VALID;
ALTER TABLE vault.audit_checkpoints ADD CONSTRAINT audit_checkpoints_note
    CHECK (octet_length(note) <= 65536) NOT VALID;
"""

# What the application role could still do (THREAT-MODEL.md §6):
# * write the derived hashes: two sessions inserting the same audit line
#   number, the second with ON CONFLICT DO NOTHING, ran the second's tree
#   trigger too, and its upsert overwrote the first's stored hashes once that
#   committed, while its own line was skipped. A tree row, once there, is
#   never replaced;
# * cost every reader memory with a bloated keyring entry: at most 64 KiB
#   (an entry is a few KB; readers take no more of one stored before).
_V15 = _TREE_ROW.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
    "DO UPDATE SET hashes = excluded.hashes", "DO NOTHING") + r"""
ALTER TABLE vault.keyrings ADD CONSTRAINT keyrings_entry_size
    CHECK (octet_length(data) <= 65536) NOT VALID;
"""

# What a folder's reading rules accept and this schema refused: a line that
# is a JSON object but no version 2 record numbered as its row (a folder
# writer's "{}", set aside by the next writer's torn record) was refused
# outright, so a folder vault holding one could never move here. It is a
# fragment now, like any other line that is no record: accepted only if a
# torn record of the same transaction names it (audit_named, at commit). So
# is JSON the server stores but cannot read members of ("\u0000"), which
# made the checks themselves fail.
_V16 = r"""
CREATE FUNCTION vault.audit_is_record(line bytea, num bigint) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc json := vault.audit_json(line);
BEGIN
    RETURN coalesce(json_typeof(doc) = 'object'
                    AND json_typeof(doc -> 'v') = 'number' AND doc ->> 'v' = '2'
                    AND json_typeof(doc -> 'seq') = 'number' AND doc ->> 'seq' = num::text,
                    false);
EXCEPTION WHEN others THEN
    -- JSON the server stores but cannot read members of ("\u0000"): a
    -- line that is no record to it either, set aside as any other.
    RETURN false;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
BEGIN
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;  -- a line that is no record: audit_named checks it at commit
END $$;
-- The fragments a torn record names, or NULL when the line is no torn
-- record, or JSON the server cannot read members of ("\u0000").
CREATE FUNCTION vault.audit_torn_fragments(line bytea) RETURNS json
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc json := vault.audit_json(line);
BEGIN
    IF json_typeof(doc) = 'object' AND doc ->> 'action' = 'torn'
            AND json_typeof(doc -> 'fragments') = 'array' THEN
        RETURN doc -> 'fragments';
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_named() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM vault.audit_log AS t,
                      json_array_elements(vault.audit_torn_fragments(t.line)) AS f
        WHERE t.seq > NEW.seq AND t.seq <= NEW.seq + 4097
          AND f ->> 'seq' = NEW.seq::text
          AND f ->> 'length' = octet_length(NEW.line)::text
          AND f ->> 'sha256' = encode(sha256(NEW.line), 'hex')) THEN
        RAISE EXCEPTION 'audit line % is not a record and no torn record sets it aside',
            NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER audit_log_named ON vault.audit_log;
CREATE CONSTRAINT TRIGGER audit_log_named AFTER INSERT ON vault.audit_log
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NOT vault.audit_is_record(NEW.line, NEW.seq)) EXECUTE FUNCTION vault.audit_named();
"""

# Where every function of the schema looks names up. "pg_catalog" alone
# still left the caller's temporary schema (pg_temp) searched FIRST for
# tables and types: an application role could create a temporary domain
# named "bytea" whose CHECK called its own function, and the trigger that
# runs as the schema's owner (audit_tree_row) ran that function as the
# owner -- which read the checkpoint key and deleted audit records. Named
# last, pg_temp comes after pg_catalog for everything, and is never
# searched for functions or operators. Every function of the schema gets
# the setting, whichever version made it; the definitions above carry it too.
SAFE_SEARCH_PATH = "pg_catalog, pg_temp"
_V17 = r"""
DO $$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc AS p
             WHERE p.pronamespace = 'vault'::pg_catalog.regnamespace AND p.prokind IN ('f', 'p')
             ORDER BY p.oid LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END $$;
"""

# Every function of the schema as it is now, whichever release made the
# database. Versions 12, 14 and 16 were edited in place after they had
# shipped (types named in pg_catalog; a tree row never replaced; JSON the
# server cannot read members of taken as no record): a database an earlier
# release made kept the old bodies through every upgrade, and differed from
# a fresh one. Re-created here, every database holds the same functions
# (their owner, privileges and triggers are kept by CREATE OR REPLACE).
_V18 = r"""
CREATE OR REPLACE FUNCTION vault.append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'vault.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION vault.audit_json(line bytea) RETURNS json
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN convert_from(line, 'UTF8')::json;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_is_object(line bytea) RETURNS boolean
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    RETURN coalesce(json_typeof(vault.audit_json(line)) = 'object', false);
CREATE OR REPLACE FUNCTION vault.audit_is_record(line bytea, num bigint) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc json := vault.audit_json(line);
BEGIN
    RETURN coalesce(json_typeof(doc) = 'object'
                    AND json_typeof(doc -> 'v') = 'number' AND doc ->> 'v' = '2'
                    AND json_typeof(doc -> 'seq') = 'number' AND doc ->> 'seq' = num::text,
                    false);
EXCEPTION WHEN others THEN
    -- JSON the server stores but cannot read members of ("\u0000"): a
    -- line that is no record to it either, set aside as any other.
    RETURN false;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_torn_fragments(line bytea) RETURNS json
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc json := vault.audit_json(line);
BEGIN
    IF json_typeof(doc) = 'object' AND doc ->> 'action' = 'torn'
            AND json_typeof(doc -> 'fragments') = 'array' THEN
        RETURN doc -> 'fragments';
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
BEGIN
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;  -- a line that is no record: audit_named checks it at commit
END $$;
CREATE OR REPLACE FUNCTION vault.audit_named() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM vault.audit_log AS t,
                      json_array_elements(vault.audit_torn_fragments(t.line)) AS f
        WHERE t.seq > NEW.seq AND t.seq <= NEW.seq + 4097
          AND f ->> 'seq' = NEW.seq::text
          AND f ->> 'length' = octet_length(NEW.line)::text
          AND f ->> 'sha256' = encode(sha256(NEW.line), 'hex')) THEN
        RAISE EXCEPTION 'audit line % is not a record and no torn record sets it aside',
            NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_check_checkpoint() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.size > (SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_log) THEN
        RAISE EXCEPTION 'checkpoint % is larger than the audit log', NEW.size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    PERFORM convert_from(NEW.note, 'UTF8');
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION vault.audit_tree_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h pg_catalog.bytea := pg_catalog.sha256('\x00'::pg_catalog.bytea || NEW.line);
    stored pg_catalog.bytea := h;
    lvl pg_catalog.int4 := 0;
    sibling pg_catalog.bytea;
BEGIN
    WHILE ((NEW.seq >> lvl) & 1) = 1 LOOP
        SELECT substring(t.hashes FROM lvl * 32 + 1 FOR 32) INTO sibling
            FROM vault.audit_tree AS t WHERE t.seq = ((NEW.seq >> lvl) << lvl) - 1;
        IF sibling IS NULL OR octet_length(sibling) <> 32 THEN
            RETURN NEW;  -- derived data lagging: readers fall back to the lines
        END IF;
        h := pg_catalog.sha256('\x01'::pg_catalog.bytea || sibling || h);
        stored := stored || h;
        lvl := lvl + 1;
    END LOOP;
    INSERT INTO vault.audit_tree (seq, hashes) VALUES (NEW.seq, stored)
        ON CONFLICT (seq) DO NOTHING;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION vault.documents_vid() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    drawn pg_catalog.int8;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.vid <> OLD.vid THEN
            RAISE EXCEPTION 'a document version number is never changed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO drawn
        FROM vault.document_versions;
    IF NEW.vid < 1 OR NEW.vid > drawn THEN
        RAISE EXCEPTION 'document version number % was not drawn from its sequence', NEW.vid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vault.audit_tree_row() FROM PUBLIC;
REVOKE ALL ON FUNCTION vault.documents_vid() FROM PUBLIC;
"""

# Every insert into the audit log takes the append lock first, whoever
# makes it: the vault's writers take it before they read the log's length
# and number their lines from it, but the application role could insert the
# next line without it (a plain INSERT, COPY, ON CONFLICT, many rows at
# once), and a loop doing so failed every workstation's append ("audit
# record N is not the next one") with no lock held, so no lock wait that
# could run out and name it. Now such an insert waits for a writer's turn
# to end, and a writer for that insert's transaction: the writer's lock
# wait names its holder (a session, or a prepared transaction). The honest
# writer holds the lock already, in the same transaction: taking it again
# is no wait. The trigger that checks the line's number takes it, so the
# number is checked under the lock, before any other trigger runs.
_V19 = r"""
CREATE OR REPLACE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(%(audit_lock)d);  -- AUDIT_LOCK
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;  -- a line that is no record: audit_named checks it at commit
END $$;
""".replace("%(audit_lock)d", str(AUDIT_LOCK))

# A line holding a record numbered AHEAD of its row is refused (AUDIT.md
# §13). Rows are never removed here, so no honest writer, crash or move
# leaves one: the application role planted two copies of a record numbered
# 1,000 lines ahead, and an unsigned torn row naming them (audit_named was
# content), and every reader then found records out of place ("line N
# holds record N+1000") -- every deciding command stopped, on every
# machine, and the repair the reading rules ask for (put the lines back)
# is refused to all but a superuser. A record numbered below its row stays
# accepted when a torn record sets it aside (a copy, or a record that
# landed late in a folder log, moved here). A line is taken for a record
# here as a reader would take it at most: a JSON object with "v" the
# number 2, "time" a string and "seq" a number (a reader wants more, never
# less); "\u0000", which the server stores but cannot read members of, is
# read as another escape of the same shape, and a number beyond numeric's
# range by its sign and its exponent's. One parse of the line per insert.
_V20 = r"""
CREATE FUNCTION vault.audit_ahead(line bytea, num bigint) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v json;
    t json;
    s json;
    n text;
BEGIN
    SELECT r.v, r."time", r.seq INTO v, t, s
        FROM json_to_record(replace(convert_from(line, 'UTF8'), '\u0000', '\ufffd')::json)
        AS r(v json, "time" json, seq json);
    IF json_typeof(v) IS DISTINCT FROM 'number' OR v::text <> '2'
            OR json_typeof(t) IS DISTINCT FROM 'string'
            OR json_typeof(s) IS DISTINCT FROM 'number' THEN
        RETURN NULL;
    END IF;
    n := s::text;
    IF n ~ '^[0-9]+$' THEN  -- JSON has no leading zeros: more than 19 digits is no bigint
        RETURN CASE WHEN length(n) > 19 OR n::numeric > num THEN n END;
    END IF;
    BEGIN
        RETURN CASE WHEN n::numeric > num THEN n END;
    EXCEPTION WHEN others THEN
        -- Beyond numeric's range: huge, unless negative or tiny.
        RETURN CASE WHEN n !~ '^-' AND n !~* 'e-' THEN n END;
    END;
EXCEPTION WHEN others THEN
    RETURN NULL;  -- not UTF-8 JSON, or no object: no record to any reader
END $$;
CREATE OR REPLACE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
    ahead text;
BEGIN
    PERFORM pg_advisory_xact_lock(%(audit_lock)d);  -- AUDIT_LOCK
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    ahead := vault.audit_ahead(NEW.line, NEW.seq);
    IF ahead IS NOT NULL THEN
        RAISE EXCEPTION 'audit line % holds a record numbered %, ahead of its line: lines are'
            ' never removed here, so it was planted', NEW.seq, left(ahead, 40)
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;  -- a line that is no record: audit_named checks it at commit
END $$;
""".replace("%(audit_lock)d", str(AUDIT_LOCK))

# A stored document version is named by its row's id and tag, and its
# chunks by their vid and number: none of these is ever changed (THREAT-MODEL
# §6). The application role held a document's row locked, waited for the
# shred's record, renamed the row's tag and committed: the shred's DELETE,
# which had waited on that lock, found its row renamed, matched nothing and
# returned, and the shred said done while the version -- every wrapped file
# key -- stayed stored; every 'doctor --repair' said it removed it while the
# role renamed it again. A chunk moved to another vid would have kept the
# header out of the shred's reach the same way. The size stays writable: a
# writer sets it at the end, and readers hold it to the label's.
_V21 = r"""
CREATE OR REPLACE FUNCTION vault.documents_vid() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    drawn pg_catalog.int8;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.vid <> OLD.vid THEN
            RAISE EXCEPTION 'a document version number is never changed'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.id <> OLD.id OR NEW.tag <> OLD.tag THEN
            RAISE EXCEPTION 'document % version % is never renamed', OLD.id, OLD.tag
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO drawn
        FROM vault.document_versions;
    IF NEW.vid < 1 OR NEW.vid > drawn THEN
        RAISE EXCEPTION 'document version number % was not drawn from its sequence', NEW.vid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vault.documents_vid() FROM PUBLIC;
CREATE FUNCTION vault.document_chunks_fixed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.vid <> OLD.vid OR NEW.n <> OLD.n THEN
        RAISE EXCEPTION 'chunk % of document version % is never moved', OLD.n, OLD.vid
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vault.document_chunks_fixed() FROM PUBLIC;
CREATE TRIGGER document_chunks_fixed BEFORE UPDATE ON vault.document_chunks
    FOR EACH ROW EXECUTE FUNCTION vault.document_chunks_fixed();
"""

# What a folder log holds and its readers set aside, the database refused:
# an empty line, one over 512 KiB, a record numbered ahead of its line, a
# run of more than 4,097 lines before the torn record naming its last ones
# (AUDIT.md §8). A folder writer without a key appended one, the next writer
# set it aside, and the vault could never move here: lines are never
# removed. These checks are for what the application role writes into a
# live log, where the log's readers would pay for every such line and no
# one could remove it; a log moved in is one the source verified, and is
# taken as its readers read it. The schema tells one from the other: the
# lines a transaction writes after the log's first line, itself written by
# that transaction, while the vault has no manifest -- a move (or init's
# first records; nothing else writes line 0, and a move or init refuses a
# log that holds a line already). Once the manifest is there, no one's
# transaction is that one again. A line is at most 64 MiB whoever writes it
# (a move refuses a longer one before it writes anything).
_V22 = r"""
CREATE FUNCTION vault.audit_importing(num bigint) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN NOT EXISTS (SELECT FROM vault.manifest)
        AND (num = 0 OR EXISTS (SELECT FROM vault.audit_log AS t
                                WHERE t.seq = 0 AND t.xmin = pg_current_xact_id()::xid));
END $$;
ALTER TABLE vault.audit_log DROP CONSTRAINT audit_log_line_size,
    ADD CONSTRAINT audit_log_line_size CHECK (octet_length(line) <= 67108864);
CREATE OR REPLACE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bigint;
    ahead text;
BEGIN
    PERFORM pg_advisory_xact_lock(%(audit_lock)d);  -- AUDIT_LOCK
    SELECT coalesce(max(seq) + 1, 0) INTO expected FROM vault.audit_log;
    IF NEW.seq <> expected THEN
        RAISE EXCEPTION 'audit record % is not the next one (%)', NEW.seq, expected
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF octet_length(NEW.line) NOT BETWEEN 1 AND 524288 THEN
        IF NOT vault.audit_importing(NEW.seq) THEN
            RAISE EXCEPTION 'audit line % is % bytes: a line is of 1 to 524288', NEW.seq,
                octet_length(NEW.line) USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;  -- no record: set aside in the log moved in
    END IF;
    ahead := vault.audit_ahead(NEW.line, NEW.seq);
    IF ahead IS NOT NULL AND NOT vault.audit_importing(NEW.seq) THEN
        RAISE EXCEPTION 'audit line % holds a record numbered %, ahead of its line: lines are'
            ' never removed here, so it was planted', NEW.seq, left(ahead, 40)
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;  -- a line that is no record: audit_named checks it at commit
END $$;
CREATE OR REPLACE FUNCTION vault.audit_named() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF vault.audit_importing(NEW.seq) THEN
        RETURN NULL;  -- set aside in the log moved in, named or not
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM vault.audit_log AS t,
                      json_array_elements(vault.audit_torn_fragments(t.line)) AS f
        WHERE t.seq > NEW.seq AND t.seq <= NEW.seq + 4097
          AND f ->> 'seq' = NEW.seq::text
          AND f ->> 'length' = octet_length(NEW.line)::text
          AND f ->> 'sha256' = encode(sha256(NEW.line), 'hex')) THEN
        RAISE EXCEPTION 'audit line % is not a record and no torn record sets it aside',
            NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
""".replace("%(audit_lock)d", str(AUDIT_LOCK))

# The functions the migrations leave in the schema (at VERSION): whether
# each runs as the schema's owner (SECURITY DEFINER), and the SHA-256 of
# its source as the catalog holds it (pg_proc.prosrc; for a function with a
# SQL-standard body, which has none, that body as PostgreSQL writes it back).
# Any other function -- or one of these overloaded, with another body,
# running as the owner when it should not, or without SAFE_SEARCH_PATH --
# was put there by someone who had the owner's privileges, and ``vault
# doctor`` names it (schema_problems). A migration that changes a function
# changes its digest here: a fresh vault's doctor then says which.
FUNCTIONS: dict[str, tuple[bool, str]] = {
    "append_only": (False, "84a5b9366558684602e86f059a18e91a406aa5f6eb462b13a4a26b842d957e8a"),
    "audit_json": (False, "31976b160282bb00eecfc30526ab177781269ce571dd918fc3d3a2925874ec83"),
    "audit_is_object": (False,
                        "ae76547de338878c09ff75262b415c8f8a134a2d7c882fb13376f3e89982c956"),
    "audit_check_line": (False,
                         "e76b86c34943d8f3d2973db4087bdb7dc6741d8a056edef872571517ca5c3c93"),
    "audit_named": (False, "bb653fabd1655a96727fcf3d49ad6cde8d63bad217a02779dd435c8ec5360beb"),
    "audit_tree_row": (True, "fa1e7ad2a8eaef985854da1845564c784ff73d6c87917fbc33fb10a4834bef8c"),
    "audit_check_checkpoint": (
        False, "27a9f161a1917082eb5e363e89db1e425b6f573952ee7d81a616b32c5a7087ba"),
    "documents_vid": (True, "5011cd27a132c70fee05df2732a2f318ca712590fb37d5c68586583fe81fd0f0"),
    "audit_is_record": (False,
                        "6574b0a3da39a62f6a2492fa456da1d8c0ca06cf11c3be8559d04f0ee8fd9245"),
    "audit_torn_fragments": (
        False, "8bef02a3f82216de7aa347d19ce47af3e2a565fba38e7cf52cc716d120e25c3c"),
    "audit_ahead": (False, "82e687864fc6f2c9f178962009fd52e2a60de15e38aff0c80f3fe7890ecd26ae"),
    "document_chunks_fixed": (False,
                              "1b6e6144aaf2fa94b7a96c186772fd69059577ff09c9919f95cf6ccdb6741416"),
    "audit_importing": (False,
                        "81ee2ee5e7a3b976ebe781393ad274c844446ca66864824d812f5e8958935b92"),
}

# The triggers the migrations leave (at VERSION), as PostgreSQL writes each
# back (pg_get_triggerdef, under SAFE_SEARCH_PATH), each enabled as made
# ("origin" mode). One missing, defined otherwise, disabled, enabled only
# for replication sessions (then it never fires for the vault) or ALWAYS,
# or a trigger more, is someone's with the owner's privileges: the
# append-only guard of the audit tables is these triggers.
TRIGGERS: dict[str, tuple[str, str]] = {name: (table, f"CREATE {kind}TRIGGER {name} {body}")
                                        for name, table, kind, body in (
    ("audit_checkpoints_append_only", "audit_checkpoints", "", "BEFORE DELETE OR UPDATE ON"
     " vault.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION vault.append_only()"),
    ("audit_checkpoints_check", "audit_checkpoints", "", "BEFORE INSERT ON"
     " vault.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION vault.audit_check_checkpoint()"),
    ("audit_checkpoints_no_truncate", "audit_checkpoints", "", "BEFORE TRUNCATE ON"
     " vault.audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only()"),
    ("audit_log_1_check", "audit_log", "", "BEFORE INSERT ON vault.audit_log"
     " FOR EACH ROW EXECUTE FUNCTION vault.audit_check_line()"),
    ("audit_log_2_tree", "audit_log", "", "BEFORE INSERT ON vault.audit_log"
     " FOR EACH ROW EXECUTE FUNCTION vault.audit_tree_row()"),
    ("audit_log_append_only", "audit_log", "", "BEFORE DELETE OR UPDATE ON vault.audit_log"
     " FOR EACH ROW EXECUTE FUNCTION vault.append_only()"),
    ("audit_log_named", "audit_log", "CONSTRAINT ", "AFTER INSERT ON vault.audit_log"
     " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((NOT vault.audit_is_record(new.line,"
     " new.seq))) EXECUTE FUNCTION vault.audit_named()"),
    ("audit_log_no_truncate", "audit_log", "", "BEFORE TRUNCATE ON vault.audit_log"
     " FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only()"),
    ("documents_vid", "documents", "", "BEFORE INSERT OR UPDATE ON vault.documents"
     " FOR EACH ROW EXECUTE FUNCTION vault.documents_vid()"),
    ("document_chunks_fixed", "document_chunks", "", "BEFORE UPDATE ON vault.document_chunks"
     " FOR EACH ROW EXECUTE FUNCTION vault.document_chunks_fixed()"),
)}

# The tables the migrations leave (at VERSION), each column as
# "type [NOT NULL] [DEFAULT expression]" (format_type, pg_get_expr), and
# their constraints as PostgreSQL writes each back (pg_get_constraintdef,
# under SAFE_SEARCH_PATH, without " NOT VALID"). Every vault table is logged.
_BYTES = "bytea NOT NULL"
_INT8 = "bigint NOT NULL"
_TEXT = "text NOT NULL"
_ONE = "boolean NOT NULL DEFAULT true"
COLUMNS: dict[str, dict[str, str]] = {
    "actors": {"key_hash": _TEXT, "public_key": _BYTES},
    "app_roles": {"role": "name NOT NULL", "checkpoints": "boolean NOT NULL"},
    "audit_checkpoints": {"size": _INT8, "note": _BYTES},
    "audit_log": {"seq": _INT8, "line": _BYTES},
    "audit_tree": {"seq": _INT8, "hashes": _BYTES},
    "document_chunks": {"vid": _INT8, "n": "integer NOT NULL", "data": _BYTES},
    "documents": {"id": _TEXT, "tag": _TEXT, "vid": _INT8, "size": _INT8},
    "keyrings": {"okey": _TEXT, "key_id": _TEXT, "data": _BYTES},
    "log_key": {"one": _ONE, "data": _BYTES},
    "manifest": {"one": _ONE, "data": _BYTES},
    "schema_version": {"version": "integer NOT NULL", "description": _TEXT,
                       "applied_at": "timestamp with time zone NOT NULL DEFAULT now()"},
    "statements": {"kind": _TEXT, "name": _TEXT, "data": _BYTES},
}
CONSTRAINTS: dict[tuple[str, str], str] = {(table, name): definition
                                           for table, name, definition in (
    ("actors", "actors_key_hash", "CHECK ((key_hash = encode(sha256(public_key), 'hex'::text)))"),
    ("actors", "actors_key_hash_check", "CHECK ((key_hash ~ '^[0-9a-f]{64}$'::text))"),
    ("actors", "actors_pkey", "PRIMARY KEY (key_hash)"),
    ("actors", "actors_public_key_check", "CHECK ((octet_length(public_key) = 32))"),
    ("app_roles", "app_roles_pkey", "PRIMARY KEY (role)"),
    ("audit_checkpoints", "audit_checkpoints_note", "CHECK ((octet_length(note) <= 65536))"),
    ("audit_checkpoints", "audit_checkpoints_pkey", "PRIMARY KEY (size)"),
    ("audit_checkpoints", "audit_checkpoints_size_check", "CHECK ((size >= 0))"),
    ("audit_log", "audit_log_line_check", "CHECK ((POSITION(('\\x0a'::bytea) IN (line)) = 0))"),
    ("audit_log", "audit_log_line_size", "CHECK ((octet_length(line) <= 67108864))"),
    ("audit_log", "audit_log_pkey", "PRIMARY KEY (seq)"),
    ("audit_log", "audit_log_seq_check", "CHECK ((seq >= 0))"),
    ("audit_tree", "audit_tree_hashes_check",
     "CHECK ((((octet_length(hashes) % 32) = 0) AND (octet_length(hashes) > 0)))"),
    ("audit_tree", "audit_tree_pkey", "PRIMARY KEY (seq)"),
    ("audit_tree", "audit_tree_seq_check", "CHECK ((seq >= 0))"),
    ("document_chunks", "document_chunks_n_check", "CHECK ((n >= 0))"),
    ("document_chunks", "document_chunks_pkey", "PRIMARY KEY (vid, n)"),
    ("document_chunks", "document_chunks_vid_fkey", "FOREIGN KEY (vid) REFERENCES"
     " vault.documents(vid) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"),
    ("documents", "documents_id_check", "CHECK ((id ~ '^[a-z2-7]{16}$'::text))"),
    ("documents", "documents_pkey", "PRIMARY KEY (id, tag)"),
    ("documents", "documents_size_check", "CHECK ((size >= 0))"),
    ("documents", "documents_tag_check", "CHECK ((tag ~ '^[0-9a-f]{8}$'::text))"),
    ("documents", "documents_vid_key", "UNIQUE (vid)"),
    ("keyrings", "keyrings_entry_size", "CHECK ((octet_length(data) <= 65536))"),
    ("keyrings", "keyrings_key_id_check", "CHECK ((key_id ~ '^[0-9a-f]{32}$'::text))"),
    ("keyrings", "keyrings_okey_check", "CHECK ((okey ~ '^[0-9a-f]{32}$'::text))"),
    ("keyrings", "keyrings_pkey", "PRIMARY KEY (okey, key_id)"),
    ("log_key", "log_key_one_check", "CHECK (one)"),
    ("log_key", "log_key_pkey", "PRIMARY KEY (one)"),
    ("manifest", "manifest_one_check", "CHECK (one)"),
    ("manifest", "manifest_pkey", "PRIMARY KEY (one)"),
    ("schema_version", "schema_version_pkey", "PRIMARY KEY (version)"),
    ("statements", "statements_data_check", "CHECK ((octet_length(data) <= 1048576))"),
    ("statements", "statements_kind_check",
     "CHECK ((kind = ANY (ARRAY['request'::text, 'approval'::text])))"),
    ("statements", "statements_name_check", "CHECK ((name ~ '^[0-9a-f]{64}$'::text))"),
    ("statements", "statements_named", "CHECK ((name = encode(sha256(data), 'hex'::text)))"),
    ("statements", "statements_pkey", "PRIMARY KEY (kind, name)"),
)}
# Added NOT VALID, by design (docs/DEPLOYMENT.md §5): rows stored before the
# version that made them keep their names and sizes, and readers bound what
# they take of them. Validated by an administrator, they are as good.
_NOT_VALID = frozenset({"statements_named", "audit_checkpoints_note", "keyrings_entry_size"})

#: (version, description, DDL), applied in this order.
# Versions 1 to 4 held vaults of format vault/v1, which this version does
# not read: format vault/v2 starts at FIRST.
STEPS: Sequence[tuple[int, str, str]] = (
    (10, "vault/v2 storage: manifest, log key, keyrings, actors, statements, documents",
     _STORAGE),
    (11, "audit log: records, checkpoints; append-only", _AUDIT),
    (12, "audit log v2: hostile rows refused, derived hashes computed by the database",
     _AUDIT_V2),
    (13, "actors: a row's key hash must be the SHA-256 of its key", _ACTORS_V13),
    (14, "documents: version numbers drawn, never squatted; statements named by their "
         "bytes' SHA-256; checkpoint notes of at most 64 KiB", _V14),
    (15, "audit log: a stored tree row is never replaced; keyring entries of at most 64 KiB",
     _V15),
    (16, "audit log: a JSON object that is no record is a fragment, set aside as any other",
     _V16),
    (17, "functions: search_path pg_catalog, then pg_temp (never the caller's temporary "
         "types first)", _V17),
    (18, "functions: every one re-created as it is now, whichever release made the database",
     _V18),
    (19, "audit log: every insert takes the append lock, whoever makes it", _V19),
    (20, "audit log: a line holding a record numbered ahead of its row is refused", _V20),
    (21, "documents: a version's id and tag, and its chunks' version and number, never "
         "change", _V21),
    (22, "audit log: a log moved in is taken as its readers read it, every line it sets "
         "aside included", _V22),
)
FIRST = STEPS[0][0]
VERSION = STEPS[-1][0]

# Privileges of an application role, by table (docs/DEPLOYMENT.md §2).
_ADD_ONLY = ("manifest", "actors", "statements", "audit_log", "audit_checkpoints")
_READ_WRITE = ("keyrings", "documents", "document_chunks")
# The functions an application role's own statements evaluate, as that
# role: audit_log_named's WHEN clause (audit_is_record), and what it,
# audit_named and audit_check_line -- trigger functions that do not run as
# the owner -- call in turn. PostgreSQL gives every role EXECUTE on a new function, unless an
# administrator's ALTER DEFAULT PRIVILEGES ... REVOKE EXECUTE ON FUNCTIONS
# FROM PUBLIC took that away: then every audit append failed. No CHECK
# constraint or column default calls a function of the schema; a trigger's
# own function needs no EXECUTE to fire.
_APP_FUNCTIONS = ("audit_ahead(bytea, bigint)", "audit_importing(bigint)",
                  "audit_is_record(bytea, bigint)", "audit_json(bytea)",
                  "audit_torn_fragments(bytea)")


def current_version(conn: Connection) -> int:
    """The schema version of the database (0: no vault schema yet)."""
    try:
        with conn.transaction():
            row = conn.execute("SELECT max(version) FROM vault.schema_version").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return 0
    return int(row[0]) if row and row[0] is not None else 0


def _app_privileges() -> dict[str, set[str]]:
    """What :func:`_grant_statements` gives an application role (one that
    signs checkpoints), by table or sequence of the schema."""
    given = {table: {"SELECT", "INSERT"} for table in _ADD_ONLY}
    given |= {table: {"SELECT", "INSERT", "UPDATE", "DELETE"} for table in _READ_WRITE}
    given |= {"schema_version": {"SELECT"}, "audit_tree": {"SELECT"},
              "document_versions": {"USAGE"},
              "log_key": {"SELECT", "INSERT"}}
    return given


_CATALOG_TEXT_SETTINGS = (("quote_all_identifiers", "off"), ("bytea_output", "hex"),
                          ("extra_float_digits", "1"), ("DateStyle", "'ISO, MDY'"),
                          ("IntervalStyle", "postgres"), ("TimeZone", "'UTC'"),
                          ("standard_conforming_strings", "on"))


def schema_problems(conn: Connection) -> list[str]:
    """What differs from the schema the migrations made, for ``vault
    doctor``: each names something that someone with the owner's privileges
    made or changed (functions, triggers, privileges, ownership), or a
    prepared transaction, which holds its locks until someone ends it. A
    name is shown as the catalog holds it, at most 64 characters. A few
    catalog queries, in one transaction."""
    with conn.transaction():
        # The catalog's texts (pg_get_triggerdef, pg_get_constraintdef, a SQL
        # body) qualify names by the search path, quote identifiers as
        # quote_all_identifiers says and write constants by the output
        # settings (bytea_output = escape wrote '\x0a'::bytea as '\012'),
        # which any role may set for itself: each pinned to what the texts
        # compared with were written under.
        conn.execute(f"SET LOCAL search_path = {SAFE_SEARCH_PATH}")
        for setting, value in _CATALOG_TEXT_SETTINGS:
            conn.execute(f"SET LOCAL {setting} = {value}")
        if encoding := _encoding_problem(conn):
            return [encoding]  # what the catalog says is not read alike either
        return (_function_problems(conn) + _trigger_problems(conn)
                + _table_problems(conn) + _foreign_problems(conn)
                + _privilege_problems(conn) + _setting_problems(conn)
                + _prepared_problems(conn))


def _encoding_problem(conn: Connection) -> str | None:
    """Why the database's encoding will not do, or None. The schema's
    checks read each audit line as JSON; in a database that is not UTF8
    the server cannot decode every line the vault reads as a record (a
    "\\u00e9" escape in SQL_ASCII), takes it for no record, and lets the
    application role plant records the checks would refuse (AUDIT.md §13)."""
    row = conn.execute("SELECT pg_catalog.current_setting('server_encoding')").fetchone()
    value = row[0] if row else "?"
    # bytes where the session does not decode: the server's own encoding
    encoding = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    if encoding == "UTF8":
        return None
    return (f"the database's encoding is {encoding[:32]}, not UTF8: its checks cannot read "
            "every audit line as the vault does")


def _function_problems(conn: Connection) -> list[str]:
    rows = conn.execute(
        "SELECT left(p.proname, 64), p.prosecdef, coalesce(p.proconfig, '{}'),"
        " CASE WHEN p.prosqlbody IS NULL THEN p.prosrc"
        " ELSE pg_catalog.pg_get_function_sqlbody(p.oid) END,"
        " p.proowner = n.nspowner, left(pg_catalog.pg_get_userbyid(p.proowner), 64)"
        " FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n"
        " ON n.oid = p.pronamespace WHERE n.nspname = 'vault' ORDER BY 1, p.oid").fetchall()
    problems: list[str] = []
    seen: set[str] = set()
    for name, definer, config, source, owned, owner in rows:
        what = f"database: function vault.{name}"
        if name not in FUNCTIONS:
            problems.append(f"{what} was not made by the vault's migrations"
                            + (" and runs as the schema's owner" if definer else ""))
            continue
        if name in seen:
            problems.append(f"{what} is there twice: one was not made by the migrations")
        seen.add(name)
        made_definer, digest = FUNCTIONS[name]
        if hashlib.sha256(str(source or "").encode()).hexdigest() != digest:
            problems.append(f"{what} is not the one the migrations made: its body was replaced")
        if definer and not made_definer:
            problems.append(f"{what} was changed to run as the schema's owner")
        if f"search_path={SAFE_SEARCH_PATH}" not in config:
            problems.append(f"{what} does not set search_path to {SAFE_SEARCH_PATH}")
        if not owned:
            problems.append(f"{what} belongs to role {owner}, not to the schema's owner")
    return problems


# How a trigger fires (pg_trigger.tgenabled) when it is not as made ('O').
_TRIGGER_MODES = {
    "D": "is disabled",
    "R": "fires only in replication sessions (ENABLE REPLICA TRIGGER): never for the vault",
    "A": "is enabled ALWAYS, not as the migrations made it",
}


def _trigger_problems(conn: Connection) -> list[str]:
    rows = conn.execute(
        "SELECT left(c.relname, 64), left(t.tgname, 64), t.tgenabled,"
        " pg_catalog.pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger AS t"
        " JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid"
        " WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace AND NOT t.tgisinternal"
        " ORDER BY 1, 2").fetchall()
    problems: list[str] = []
    found: set[str] = set()
    for table, name, mode, definition in rows:
        what = f"database: trigger {name} on vault.{table}"
        if TRIGGERS.get(name, ("", ""))[0] != table:
            problems.append(f"{what} was not made by the vault's migrations")
            continue
        found.add(name)
        if definition != TRIGGERS[name][1]:
            problems.append(f"{what} is not the one the migrations made: it was defined again")
        if mode != "O":
            problems.append(f"{what} {_TRIGGER_MODES.get(mode, 'is not enabled as made')}")
    for name, (table, _) in sorted(TRIGGERS.items()):
        if name not in found:
            problems.append(f"database: trigger {name} on vault.{table} is missing: it was"
                            " dropped")
    # Rules rewrite what a statement does before any trigger sees it (DO
    # INSTEAD NOTHING drops appends); row-level security hides rows from a
    # reader. The migrations make neither.
    for table, rule in conn.execute(
            "SELECT left(c.relname, 64), left(r.rulename, 64) FROM pg_catalog.pg_rewrite AS r"
            " JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class"
            " WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace"
            " AND r.rulename <> '_RETURN' ORDER BY 1, 2").fetchall():
        problems.append(f"database: rule {rule} on vault.{table} was not made by the vault's"
                        " migrations")
    for (table,) in conn.execute(
            "SELECT left(c.relname, 64) FROM pg_catalog.pg_class AS c"
            " WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace AND (c.relrowsecurity"
            " OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy AS p WHERE p.polrelid = c.oid))"
            " ORDER BY 1").fetchall():
        problems.append(f"database: vault.{table} has row-level security, which the vault's"
                        " migrations never set")
    return problems


def _table_problems(conn: Connection) -> list[str]:
    """Tables, columns and constraints other than the migrations made them:
    a CHECK or key dropped lets in the rows it refused (an actors row under
    another's hash, an audit line numbered twice); an UNLOGGED table is
    emptied by the next crash, and no trigger fires."""
    problems: list[str] = []
    columns: dict[str, dict[str, str]] = {}
    for table, column, kind, notnull, default in conn.execute(
            "SELECT left(c.relname, 64), left(a.attname, 64),"
            " pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')"
            " FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_attribute AS a"
            " ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum"
            " WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace"
            " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1, a.attnum").fetchall():
        columns.setdefault(table, {})[column] = (
            kind + (" NOT NULL" if notnull else "") + (f" DEFAULT {default}" if default else ""))
    for table, found in columns.items():
        if table not in COLUMNS:
            problems.append(f"database: table vault.{table} was not made by the vault's"
                            " migrations")
            continue
        made = COLUMNS[table]
        problems += [f"database: column {column} of vault.{table} was not made by the vault's"
                     " migrations" for column in found if column not in made]
        problems += [f"database: column {column} of vault.{table} is missing: it was dropped"
                     for column in made if column not in found]
        problems += [f"database: column {column} of vault.{table} is {found[column]}, not"
                     f" {made[column]} as the migrations made it"
                     for column in made if column in found and found[column] != made[column]]
    problems += [f"database: table vault.{table} is missing: it was dropped"
                 for table in COLUMNS if table not in columns]
    for kind, name in conn.execute(
            "SELECT c.relkind, left(c.relname, 64) FROM pg_catalog.pg_class AS c"
            " WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace"
            " AND c.relkind IN ('r', 'p', 'S', 'm') AND c.relpersistence <> 'p'"
            " ORDER BY 2").fetchall():
        what = "sequence" if kind == "S" else "table"
        problems.append(f"database: {what} vault.{name} is not logged (UNLOGGED or"
                        " temporary): a crash empties it, and no trigger fires")
    found_constraints: set[tuple[str, str]] = set()
    for table, name, definition, validated in conn.execute(
            "SELECT left(c.relname, 64), left(k.conname, 64),"
            " pg_catalog.pg_get_constraintdef(k.oid), k.convalidated"
            " FROM pg_catalog.pg_constraint AS k JOIN pg_catalog.pg_class AS c"
            " ON c.oid = k.conrelid WHERE c.relnamespace = 'vault'::pg_catalog.regnamespace"
            # constraint triggers are compared as triggers; NOT NULL as columns
            " AND k.contype NOT IN ('t', 'n') ORDER BY 1, 2").fetchall():
        what = f"database: constraint {name} on vault.{table}"
        made_as = CONSTRAINTS.get((table, name))
        if made_as is None:
            problems.append(f"{what} was not made by the vault's migrations")
            continue
        found_constraints.add((table, name))
        if str(definition).removesuffix(" NOT VALID") != made_as:
            problems.append(f"{what} is not the one the migrations made: it was defined again")
        elif not validated and name not in _NOT_VALID:
            problems.append(f"{what} is NOT VALID: rows it refuses may be there")
    problems += [f"database: constraint {name} on vault.{table} is missing: it was dropped"
                 for table, name in sorted(CONSTRAINTS) if (table, name) not in found_constraints]
    return problems


def _foreign_problems(conn: Connection) -> list[str]:
    """Anything of the schema (a constraint, a default, an index, a trigger
    or its WHEN clause, a column's type, a function's SQL body) that depends
    on a function, operator or type outside pg_catalog and vault: whoever
    owns that decides what it does -- a CHECK calling ``public.keep(line)``
    refuses the audit records its owner chooses."""
    rows = conn.execute(
        "WITH dep AS (SELECT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid,"
        "  CASE d.classid"
        "  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN (SELECT k.connamespace"
        "   FROM pg_catalog.pg_constraint AS k WHERE k.oid = d.objid)"
        "  WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT c.relnamespace"
        "   FROM pg_catalog.pg_attrdef AS a JOIN pg_catalog.pg_class AS c"
        "   ON c.oid = a.adrelid WHERE a.oid = d.objid)"
        "  WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN (SELECT c.relnamespace"
        "   FROM pg_catalog.pg_class AS c WHERE c.oid = d.objid)"
        "  WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN (SELECT c.relnamespace"
        "   FROM pg_catalog.pg_trigger AS t JOIN pg_catalog.pg_class AS c"
        "   ON c.oid = t.tgrelid WHERE t.oid = d.objid)"
        "  WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN (SELECT p.pronamespace"
        "   FROM pg_catalog.pg_proc AS p WHERE p.oid = d.objid)"
        "  WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN (SELECT t.typnamespace"
        "   FROM pg_catalog.pg_type AS t WHERE t.oid = d.objid) END AS objns,"
        "  CASE d.refclassid"
        "  WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN (SELECT p.pronamespace"
        "   FROM pg_catalog.pg_proc AS p WHERE p.oid = d.refobjid)"
        "  WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN (SELECT o.oprnamespace"
        "   FROM pg_catalog.pg_operator AS o WHERE o.oid = d.refobjid)"
        "  WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN (SELECT t.typnamespace"
        "   FROM pg_catalog.pg_type AS t WHERE t.oid = d.refobjid) END AS refns"
        "  FROM pg_catalog.pg_depend AS d WHERE d.deptype = 'n')"
        " SELECT DISTINCT left(pg_catalog.pg_describe_object(classid, objid, objsubid), 160),"
        " left(pg_catalog.pg_describe_object(refclassid, refobjid, 0), 160) FROM dep"
        " WHERE objns = 'vault'::pg_catalog.regnamespace"
        " AND refns NOT IN ('pg_catalog'::pg_catalog.regnamespace,"
        " 'vault'::pg_catalog.regnamespace) ORDER BY 1, 2").fetchall()
    return [f"database: {what} depends on {used}, outside schemas pg_catalog and vault:"
            " whoever owns that decides what it does" for what, used in rows]


# Settings a role's or the database's defaults may hold without a word from
# doctor: those every session of the library sets itself (PINNED), those
# that only change how doctor's own catalog texts are written (it pins
# them in its transaction), costs of JIT and parallel plans (neither is
# ever used: PINNED), the application's name and how dates, numbers and
# money are written -- the vault reads none of them.
_HARMLESS_SETTINGS = PINNED | {name.lower() for name, _ in _CATALOG_TEXT_SETTINGS} | {
    "application_name", "jit_above_cost", "jit_inline_above_cost", "jit_optimize_above_cost",
    "parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size",
    "min_parallel_index_scan_size", "lc_monetary", "lc_numeric", "lc_time"}


def _setting_problems(conn: Connection) -> list[str]:
    """Settings of the vault's database, or of a role using the vault, in
    every session of theirs (pg_db_role_setting): session_replication_role
    set to anything but "origin" turns off every trigger in origin mode --
    the audit tables' append-only guards, the checks of every line (or this
    session has it, by the server's own configuration; only a superuser may
    set it); any other setting that is not harmless to the vault
    (_HARMLESS_SETTINGS) changes how every workstation's sessions run, and
    anyone holding the role may have set it (ALTER ROLE CURRENT_USER SET):
    JIT from a cost of 0, index scans off, made every operation 75 times
    slower."""
    problems: list[str] = []
    for role, everywhere, name, value in conn.execute(
            "SELECT left(coalesce(r.rolname, ''), 64), s.setdatabase = 0,"
            " pg_catalog.lower(split_part(c, '=', 1)),"
            " left(substr(c, pg_catalog.strpos(c, '=') + 1), 64)"
            " FROM pg_catalog.pg_db_role_setting AS s"
            " LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = s.setrole,"
            " pg_catalog.unnest(s.setconfig) AS c"
            " WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database AS d"
            "  WHERE d.datname = pg_catalog.current_database()))"
            " AND (s.setrole = 0 OR pg_catalog.has_schema_privilege(s.setrole, 'vault', 'USAGE'))"
            " ORDER BY 3, 1, 2").fetchall():
        where = (f"role {role}" if role else "every role") + (
            " in every database" if everywhere else " in the vault's database")
        if name == "session_replication_role":
            if str(value).lower() != "origin":
                problems.append(f"database: session_replication_role is set to {value} for"
                                f" {where}: triggers do not fire in its sessions -- the audit"
                                " log's guards among them")
        elif name not in _HARMLESS_SETTINGS:
            problems.append(f"database: {name[:64]} is set to {value} for {where}: every"
                            " session of it starts so, and the vault does not set it back --"
                            " reset it, or set it in the server's configuration"
                            " (docs/DEPLOYMENT.md §3)")
    (current,) = conn.execute("SELECT pg_catalog.current_setting('session_replication_role')"
                              ).fetchone() or ("origin",)
    if current != "origin" and not any("session_replication_role" in p for p in problems):
        problems.append(f"database: session_replication_role is {str(current)[:64]} in this"
                        " session (the server's configuration): triggers do not fire --"
                        " the audit log's guards among them")
    return problems


def _privilege_problems(conn: Connection) -> list[str]:
    """Privileges on the schema's tables and sequences beyond what the
    grants give: a role may read any (an auditor, DEPLOYMENT.md §2; reading
    the checkpoint key is ``vault migrate``'s to report) and hold what
    :func:`_grant_statements` gives an application role (which roles those
    are, ``vault.app_roles``, only the owner reads); PUBLIC, nothing.
    Column privileges count as the table's. Ownership: every table and
    sequence is the schema owner's, no other role may create in the schema,
    and no role granted any of these privileges is a member of the owner."""
    given = _app_privileges()
    rows = conn.execute(
        "WITH rel AS (SELECT c.oid, c.relname, c.relowner, c.relacl, n.nspowner"
        "  FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n"
        "  ON n.oid = c.relnamespace WHERE n.nspname = 'vault'"
        "  AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')),"
        " acl AS (SELECT rel.relname, rel.relowner, rel.nspowner, a.grantee, a.privilege_type"
        "  FROM rel, pg_catalog.aclexplode(rel.relacl) AS a"
        "  UNION ALL SELECT rel.relname, rel.relowner, rel.nspowner, a.grantee, a.privilege_type"
        "  FROM rel JOIN pg_catalog.pg_attribute AS t ON t.attrelid = rel.oid"
        "  AND t.attnum > 0 AND NOT t.attisdropped, pg_catalog.aclexplode(t.attacl) AS a)"
        " SELECT DISTINCT left(relname, 64), grantee = 0,"
        "  left(pg_catalog.pg_get_userbyid(grantee), 64), privilege_type,"
        "  grantee <> 0 AND pg_catalog.pg_has_role(grantee, nspowner, 'MEMBER') FROM acl"
        " WHERE grantee NOT IN (relowner, nspowner) ORDER BY 1, 3, 4").fetchall()
    extra: dict[tuple[str, str], list[str]] = {}
    members: set[str] = set()
    for table, public, role, privilege, member in rows:
        allowed = set() if public else given.get(table, set()) | {"SELECT"}
        if privilege not in allowed:
            who = "PUBLIC (every role)" if public else f"role {role}"
            extra.setdefault((table, who), []).append(privilege)
        if member:
            members.add(role)
    problems = [f"database: {who} holds {', '.join(privileges)} on vault.{table}, which the"
                " vault's grants do not give" for (table, who), privileges in extra.items()]
    problems += [f"database: role {role} is a member of the schema's owner, and so holds all"
                 " its privileges" for role in sorted(members)]
    for kind, name, owner in conn.execute(
            "SELECT c.relkind, left(c.relname, 64), left(pg_catalog.pg_get_userbyid("
            "c.relowner), 64) FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'vault'"
            " AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f') AND c.relowner <> n.nspowner"
            " ORDER BY 2").fetchall():
        what = "sequence" if kind == "S" else "table"
        problems.append(f"database: {what} vault.{name} belongs to role {owner}, not to the"
                        " schema's owner")
    for public, role in conn.execute(
            "SELECT a.grantee = 0, left(pg_catalog.pg_get_userbyid(a.grantee), 64)"
            " FROM pg_catalog.pg_namespace AS n, pg_catalog.aclexplode(n.nspacl) AS a"
            " WHERE n.nspname = 'vault' AND a.grantee <> n.nspowner"
            " AND a.privilege_type = 'CREATE' ORDER BY 2").fetchall():
        who = "PUBLIC (every role)" if public else f"role {role}"
        problems.append(f"database: {who} may create objects in schema vault")
    return problems


def _prepared_problems(conn: Connection) -> list[str]:
    # A prepared transaction outlives its session and every restart: what it
    # locked (the vault's append lock, the next audit line) stays locked, for
    # every workstation, until someone commits or rolls it back.
    problems: list[str] = []
    for gid, owner, when in conn.execute(
            "SELECT gid, left(owner::text, 64),"
            " to_char(prepared AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database()"
            " ORDER BY prepared, gid").fetchall():
        literal = "'" + str(gid).replace("'", "''") + "'"
        problems.append(f"database: prepared transaction {literal} of role {owner}, prepared"
                        f" {when}, holds its locks until it is ended, across restarts: end it"
                        f" with ROLLBACK PREPARED {literal} (as that role or a superuser)")
    return problems


def _tables(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier("vault", n) for n in names)


def _grant_statements(role: str, checkpoints: bool) -> list[sql.Composed]:
    who = sql.Identifier(role)
    key = sql.SQL("SELECT, INSERT" if checkpoints else "INSERT")
    return [
        sql.SQL("GRANT USAGE ON SCHEMA vault TO {}").format(who),
        sql.SQL("GRANT SELECT ON vault.schema_version TO {}").format(who),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(_tables(_ADD_ONLY), who),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            _tables(_READ_WRITE), who),
        sql.SQL("GRANT USAGE ON SEQUENCE vault.document_versions TO {}").format(who),
        sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
            sql.SQL(", ").join(sql.SQL(f"vault.{f}") for f in _APP_FUNCTIONS), who),
        # Derived hashes: computed by the database (audit_tree_row), read here.
        sql.SQL("GRANT SELECT ON vault.audit_tree TO {}").format(who),
        # The checkpoint key: written once at init; read only by roles that
        # sign checkpoints (docs/DEPLOYMENT.md §6).
        sql.SQL("REVOKE ALL ON vault.log_key FROM {}").format(who),
        sql.SQL("GRANT {} ON vault.log_key TO {}").format(key, who),
    ]


def grant(conn: Connection, role: str, *, checkpoints: bool | None) -> bool:
    """Give ``role`` an application role's privileges (inside a transaction);
    with ``checkpoints`` None, a role granted before keeps whether it may read
    the checkpoint key (a new one may not). Returns whether it may."""
    # A role that exists: "public" (any case) names PUBLIC, every role of
    # the cluster, whatever the quoting -- granted so, anyone could read
    # the checkpoint key and insert records.
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        raise UsageError(f"there is no database role {role!r}",
                         hint="create it first (createuser ROLE); PUBLIC is not a role to grant")
    row = conn.execute("INSERT INTO vault.app_roles (role, checkpoints) VALUES (%s, %s)"
                       " ON CONFLICT (role) DO UPDATE SET checkpoints ="
                       " COALESCE(%s, vault.app_roles.checkpoints) RETURNING checkpoints",
                       (role, bool(checkpoints), checkpoints)).fetchone()
    may = bool(row[0]) if row is not None else bool(checkpoints)
    for statement in _grant_statements(role, may):
        conn.execute(statement)
    return may


def upgrade(conn: Connection, *, target: int = VERSION) -> tuple[int, int]:
    """Apply the missing migrations up to ``target``; ``(before, after)``."""
    if target not in {0, *(version for version, _, _ in STEPS)}:
        raise ValueError(f"schema version {target} does not exist (latest: {VERSION})")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        if (problem := _encoding_problem(conn)) is not None:
            raise UsageError(problem, hint="create the database with ENCODING 'UTF8' TEMPLATE "
                                           "template0 (docs/DEPLOYMENT.md §2)")
        before = current_version(conn)
        if 0 < before < FIRST:
            raise UsageError("this database holds a vault of an earlier format (schema "
                             f"version {before})", hint="use a new database for a new vault")
        for version, description, ddl in STEPS:
            if before < version <= target:
                conn.execute(ddl)
                conn.execute("INSERT INTO vault.schema_version (version, description)"
                             " VALUES (%s, %s)", (version, description))
        after = max(before, target)
        if after >= 1:
            # A role dropped since it was granted has nothing to be given.
            roles = conn.execute("SELECT role, checkpoints FROM vault.app_roles"
                                 " WHERE role IN (SELECT rolname FROM pg_roles)").fetchall()
            if after >= VERSION:  # grants name tables of the latest version
                for role, checkpoints in roles:
                    for statement in _grant_statements(str(role), bool(checkpoints)):
                        conn.execute(statement)
    return before, after
