-- The PostgreSQL schema 12 as commit d43fa5c's migrations made it
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
-- Name: audit_check_checkpoint(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_check_checkpoint() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
BEGIN
    IF NEW.size > (SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_log) THEN
        RAISE EXCEPTION 'checkpoint % is larger than the audit log', NEW.size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    PERFORM convert_from(NEW.note, 'UTF8');
    RETURN NEW;
END $$;


--
-- Name: audit_check_line(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_check_line() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
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


--
-- Name: audit_json(bytea); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_json(line bytea) RETURNS json
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
BEGIN
    RETURN convert_from(line, 'UTF8')::json;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;


--
-- Name: audit_is_object(bytea); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_is_object(line bytea) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    RETURN COALESCE((json_typeof(vault.audit_json(line)) = 'object'::text), false);


--
-- Name: audit_named(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_named() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
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


--
-- Name: audit_tree_row(); Type: FUNCTION; Schema: vault; Owner: -
--

CREATE FUNCTION vault.audit_tree_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog'
    AS $$
DECLARE
    h bytea := sha256('\x00'::bytea || NEW.line);
    stored bytea := h;
    lvl integer := 0;
    sibling bytea;
BEGIN
    WHILE ((NEW.seq >> lvl) & 1) = 1 LOOP
        SELECT substring(t.hashes FROM lvl * 32 + 1 FOR 32) INTO sibling
            FROM vault.audit_tree AS t WHERE t.seq = ((NEW.seq >> lvl) << lvl) - 1;
        IF sibling IS NULL OR octet_length(sibling) <> 32 THEN
            RETURN NEW;  -- derived data lagging: readers fall back to the lines
        END IF;
        h := sha256('\x01'::bytea || sibling || h);
        stored := stored || h;
        lvl := lvl + 1;
    END LOOP;
    INSERT INTO vault.audit_tree (seq, hashes) VALUES (NEW.seq, stored)
        ON CONFLICT (seq) DO UPDATE SET hashes = excluded.hashes;
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
-- Name: audit_log; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.audit_log (
    seq bigint NOT NULL,
    line bytea NOT NULL,
    CONSTRAINT audit_log_line_check CHECK ((POSITION(('\x0a'::bytea) IN (line)) = 0)),
    CONSTRAINT audit_log_line_size CHECK (((octet_length(line) >= 1) AND (octet_length(line) <= 524288))),
    CONSTRAINT audit_log_seq_check CHECK ((seq >= 0))
);


--
-- Name: audit_tree; Type: TABLE; Schema: vault; Owner: -
--

CREATE TABLE vault.audit_tree (
    seq bigint NOT NULL,
    hashes bytea NOT NULL,
    CONSTRAINT audit_tree_hashes_check CHECK ((((octet_length(hashes) % 32) = 0) AND (octet_length(hashes) > 0))),
    CONSTRAINT audit_tree_seq_check CHECK ((seq >= 0))
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
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq);


--
-- Name: audit_tree audit_tree_pkey; Type: CONSTRAINT; Schema: vault; Owner: -
--

ALTER TABLE ONLY vault.audit_tree
    ADD CONSTRAINT audit_tree_pkey PRIMARY KEY (seq);


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
-- Name: audit_checkpoints audit_checkpoints_check; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_checkpoints_check BEFORE INSERT ON vault.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION vault.audit_check_checkpoint();


--
-- Name: audit_checkpoints audit_checkpoints_no_truncate; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON vault.audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_log audit_log_1_check; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_1_check BEFORE INSERT ON vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.audit_check_line();


--
-- Name: audit_log audit_log_2_tree; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_2_tree BEFORE INSERT ON vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.audit_tree_row();


--
-- Name: audit_log audit_log_append_only; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.append_only();


--
-- Name: audit_log audit_log_named; Type: TRIGGER; Schema: vault; Owner: -
--

CREATE CONSTRAINT TRIGGER audit_log_named AFTER INSERT ON vault.audit_log DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((NOT vault.audit_is_object(new.line))) EXECUTE FUNCTION vault.audit_named();


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
INSERT INTO vault.schema_version VALUES (12, 'audit log v2: hostile rows refused, derived hashes computed by the database', '2026-12-07 00:00:00+00');


--
-- PostgreSQL database dump complete
--
