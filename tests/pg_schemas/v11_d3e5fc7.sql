-- The PostgreSQL schema 11 as commit d3e5fc7's migrations made it
-- (pg_dump --schema-only --no-owner --no-privileges -n vault, and the
-- rows of vault.schema_version).
--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: vault; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA vault;


--
-- Name: append_only(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
BEGIN
    RAISE EXCEPTION 'vault.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;


--
-- Name: audit_append(bigint, bytea[], bigint, bytea[], bigint[], bytea[]); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_append(first bigint, lines bytea[], first_hash bigint, hashes bytea[], cp_sizes bigint[], cp_notes bytea[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
DECLARE
    head bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(33321204210466818);  -- AUDIT_LOCK
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


--
-- Name: audit_head(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_head(OUT head bigint, OUT checkpointed bigint, OUT edge bytea[]) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
DECLARE
    lo bigint := 0;
    leaf bigint;
    lvl integer;
BEGIN
    PERFORM pg_advisory_xact_lock(33321204210466818);  -- AUDIT_LOCK
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


--
-- Name: audit_next(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_next() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
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


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: actors; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.actors (
    key_hash text NOT NULL,
    public_key bytea NOT NULL,
    CONSTRAINT actors_key_hash_check CHECK ((key_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT actors_public_key_check CHECK ((octet_length(public_key) = 32))
);


--
-- Name: app_roles; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.app_roles (
    role name NOT NULL,
    checkpoints boolean NOT NULL
);


--
-- Name: audit_checkpoints; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.audit_checkpoints (
    size bigint NOT NULL,
    note bytea NOT NULL,
    CONSTRAINT audit_checkpoints_size_check CHECK ((size >= 0))
);


--
-- Name: audit_hashes; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.audit_hashes (
    n bigint NOT NULL,
    hash bytea NOT NULL,
    CONSTRAINT audit_hashes_hash_check CHECK ((octet_length(hash) = 32)),
    CONSTRAINT audit_hashes_n_check CHECK ((n >= 0))
);


--
-- Name: audit_log; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.audit_log (
    seq bigint NOT NULL,
    line bytea NOT NULL,
    CONSTRAINT audit_log_line_check CHECK ((POSITION(('\x0a'::bytea) IN (line)) = 0)),
    CONSTRAINT audit_log_seq_check CHECK ((seq >= 0))
);


--
-- Name: document_chunks; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.document_chunks (
    vid bigint NOT NULL,
    n integer NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT document_chunks_n_check CHECK ((n >= 0))
);
ALTER TABLE ONLY vault.document_chunks ALTER COLUMN data SET STORAGE EXTERNAL;


--
-- Name: document_versions; Type: SEQUENCE; Schema: vault; Owner: -
--

CREATE SEQUENCE vault.document_versions
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: documents; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.documents (
    id text NOT NULL,
    tag text NOT NULL,
    vid bigint NOT NULL,
    size bigint NOT NULL,
    CONSTRAINT documents_id_check CHECK ((id ~ '^[a-z2-7]{16}$'::text)),
    CONSTRAINT documents_size_check CHECK ((size >= 0)),
    CONSTRAINT documents_tag_check CHECK ((tag ~ '^[0-9a-f]{8}$'::text))
);


--
-- Name: keyrings; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.keyrings (
    okey text NOT NULL,
    key_id text NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT keyrings_key_id_check CHECK ((key_id ~ '^[0-9a-f]{32}$'::text)),
    CONSTRAINT keyrings_okey_check CHECK ((okey ~ '^[0-9a-f]{32}$'::text))
);


--
-- Name: log_key; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.log_key (
    one boolean DEFAULT true NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT log_key_one_check CHECK (one)
);


--
-- Name: manifest; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.manifest (
    one boolean DEFAULT true NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT manifest_one_check CHECK (one)
);


--
-- Name: schema_version; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.schema_version (
    version integer NOT NULL,
    description text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: statements; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.statements (
    kind text NOT NULL,
    name text NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT statements_data_check CHECK ((octet_length(data) <= 1048576)),
    CONSTRAINT statements_kind_check CHECK ((kind = ANY (ARRAY['request'::text, 'approval'::text]))),
    CONSTRAINT statements_name_check CHECK ((name ~ '^[0-9a-f]{64}$'::text))
);


--
-- Name: actors actors_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.actors
    ADD CONSTRAINT actors_pkey PRIMARY KEY (key_hash);


--
-- Name: app_roles app_roles_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.app_roles
    ADD CONSTRAINT app_roles_pkey PRIMARY KEY (role);


--
-- Name: audit_checkpoints audit_checkpoints_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (size);


--
-- Name: audit_hashes audit_hashes_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.audit_hashes
    ADD CONSTRAINT audit_hashes_pkey PRIMARY KEY (n);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq);


--
-- Name: document_chunks document_chunks_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.document_chunks
    ADD CONSTRAINT document_chunks_pkey PRIMARY KEY (vid, n);


--
-- Name: documents documents_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.documents
    ADD CONSTRAINT documents_pkey PRIMARY KEY (id, tag);


--
-- Name: documents documents_vid_key; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.documents
    ADD CONSTRAINT documents_vid_key UNIQUE (vid);


--
-- Name: keyrings keyrings_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.keyrings
    ADD CONSTRAINT keyrings_pkey PRIMARY KEY (okey, key_id);


--
-- Name: log_key log_key_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.log_key
    ADD CONSTRAINT log_key_pkey PRIMARY KEY (one);


--
-- Name: manifest manifest_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.manifest
    ADD CONSTRAINT manifest_pkey PRIMARY KEY (one);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);


--
-- Name: statements statements_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.statements
    ADD CONSTRAINT statements_pkey PRIMARY KEY (kind, name);


--
-- Name: audit_checkpoints audit_checkpoints_append_only; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_checkpoints_append_only BEFORE DELETE OR UPDATE ON vault.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_checkpoints audit_checkpoints_no_truncate; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON vault.audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_hashes audit_hashes_append_only; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_hashes_append_only BEFORE DELETE OR UPDATE ON vault.audit_hashes FOR EACH ROW EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_hashes audit_hashes_next; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_hashes_next BEFORE INSERT ON vault.audit_hashes FOR EACH ROW EXECUTE FUNCTION vault.audit_next();


--
-- Name: audit_hashes audit_hashes_no_truncate; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_hashes_no_truncate BEFORE TRUNCATE ON vault.audit_hashes FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_log audit_log_append_only; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_log audit_log_next; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_next BEFORE INSERT ON vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.audit_next();


--
-- Name: audit_log audit_log_no_truncate; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON vault.audit_log FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();


--
-- Name: document_chunks document_chunks_vid_fkey; Type: FK CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.document_chunks
    ADD CONSTRAINT document_chunks_vid_fkey FOREIGN KEY (vid) REFERENCES vault.documents(vid) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;


--
-- PostgreSQL database dump complete
--


--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: vault; Owner: -
--

INSERT INTO vault.schema_version VALUES (10, 'vault/v2 storage: manifest, log key, keyrings, actors, statements, documents', '2026-12-07 00:00:00+00');
INSERT INTO vault.schema_version VALUES (11, 'audit log: records, checkpoints; append-only', '2026-12-07 00:00:00+00');


--
-- PostgreSQL database dump complete
--
