-- walproof DDL capture, version 1, for publication __PUB_NAME__ (installed by `walproof setup`).
--
-- ddl_command_start records the shapes of the published tables; table_rewrite records which
-- tables a command rewrites; ddl_command_end compares the shapes after the command with those
-- before and, inside the command's transaction, emits a transactional logical message
-- 'walproof.ddl.v1' describing each published table that was created, altered, published,
-- unpublished or dropped (see crates/core/src/schema_change.rs), then — for a table whose
-- values the stream cannot carry (rewritten, a column added with a default, a column type
-- or the key changed, a table newly published) — its post-DDL rows as
-- 'walproof.rows.v1' messages.
-- The functions run as their owner (a superuser) so that every role's DDL is captured.

-- The functions below run as a superuser: schema walproof must be a superuser's, or whoever
-- owns it could swap a function for their own and have the triggers run it.
DO $check$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
             WHERE n.nspname = 'walproof' AND NOT r.rolsuper) THEN
    RAISE EXCEPTION 'schema walproof exists and is not owned by a superuser; walproof DDL capture runs its functions as a superuser, so drop or reassign that schema first';
  END IF;
END
$check$;
CREATE SCHEMA IF NOT EXISTS walproof;
REVOKE ALL ON SCHEMA walproof FROM PUBLIC;

CREATE OR REPLACE FUNCTION walproof.refuse_publication(publication text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  RAISE EXCEPTION 'publication % has a row filter, a column list or publish_via_partition_root; walproof commits whole tables and cannot follow it', publication
    USING HINT = 'remove it (ALTER PUBLICATION … SET TABLE …), or drop walproof''s event triggers for this publication';
END
$fn$;

-- Published tables of a publication: OID -> {schema, name, replica_identity, columns}, the
-- columns as pgoutput describes them (no dropped or generated columns) with design.md's key.
CREATE OR REPLACE FUNCTION walproof.published_shapes(publication text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  -- A publication whose rows walproof cannot follow exactly makes every DDL fail loudly.
  SELECT CASE WHEN EXISTS (
      SELECT 1 FROM pg_publication p WHERE p.pubname = publication AND p.pubviaroot
      UNION ALL
      SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
      WHERE p.pubname = publication AND (r.prqual IS NOT NULL OR r.prattrs IS NOT NULL))
    THEN walproof.refuse_publication(publication) END;
  SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_object(
      'schema', n.nspname::text,
      'name', c.relname::text,
      'replica_identity', c.relreplident::text,
      'columns', (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'attnum', a.attnum,
            'name', a.attname::text,
            'type_oid', a.atttypid::int8,
            'type_modifier', a.atttypmod,
            'has_missing', a.atthasmissing,
            'key', EXISTS (
              SELECT 1 FROM pg_index i
              WHERE i.indrelid = c.oid
                AND CASE c.relreplident WHEN 'i' THEN i.indisreplident
                                        WHEN 'n' THEN false
                                        ELSE i.indisprimary END
                AND a.attnum = ANY (i.indkey::int2[])))
          ORDER BY a.attnum), '[]'::jsonb)
        FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
      -- generated columns, which pgoutput leaves out: one that stops being generated (DROP
      -- EXPRESSION) comes with values the stream never carried
      'generated', (
        SELECT coalesce(jsonb_agg(a.attnum), '[]'::jsonb) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated <> ''))),
    '{}'::jsonb)
  FROM pg_publication_tables p
  JOIN pg_namespace n ON n.nspname = p.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
  WHERE p.pubname = publication
$fn$;

-- Emits a table's rows as 'walproof.rows.v1' messages of about 1 MB: each value its type's
-- text output under walproof's canonical settings (format('%s') calls the output function).
CREATE OR REPLACE FUNCTION walproof.emit_rows(publication text, relid oid, shape jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
__CANONICAL_SETTINGS__
AS $fn$
DECLARE
  select_list text;
  batch jsonb;
  emitted bigint := 0;
BEGIN
  -- num_nulls, not IS NULL: a composite whose fields are all NULL IS NULL, yet is a value.
  SELECT string_agg(format('CASE WHEN num_nulls(%1$I) = 1 THEN NULL ELSE format(%2$L, %1$I) END',
                           c->>'name', '%s'), ', ' ORDER BY o)
    INTO select_list
    FROM jsonb_array_elements(shape->'columns') WITH ORDINALITY AS x(c, o);
  -- Rows are read at a snapshot taken now (READ COMMITTED), under a lock that keeps writers
  -- out until the DDL commits, so no row committed meanwhile is missed.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'walproof DDL capture: this DDL must send the rows of %.%, which needs READ COMMITTED; it runs in %',
      shape->>'schema', shape->>'name', current_setting('transaction_isolation');
  END IF;
  EXECUTE format('LOCK TABLE ONLY %I.%I IN SHARE MODE', shape->>'schema', shape->>'name');
  -- Batches of about 1 MB of JSON.
  FOR batch IN EXECUTE format(
      'SELECT jsonb_agg(r ORDER BY i) FROM (SELECT r, i, '
      '(sum(octet_length(r::text)) OVER (ORDER BY i) - octet_length(r::text)) / 1048576 AS b '
      'FROM (SELECT jsonb_build_array(%s) AS r, row_number() OVER () AS i FROM ONLY %I.%I) t) s '
      'GROUP BY b ORDER BY b',
      coalesce(select_list, ''), shape->>'schema', shape->>'name')
  LOOP
    PERFORM pg_logical_emit_message(true, 'walproof.rows.v1',
      jsonb_build_object('publication', publication, 'oid', relid::int8, 'rows', batch)::text);
    emitted := emitted + jsonb_array_length(batch);
  END LOOP;
  RETURN emitted;
END
$fn$;

CREATE OR REPLACE FUNCTION walproof.__FN_START__() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  stack jsonb := coalesce(
    nullif(current_setting('walproof.before_' || md5(__PUB__), true), '')::jsonb, '[]');
BEGIN
  -- A stack: a DDL may run inside another one (a function called by CREATE TABLE AS).
  PERFORM set_config('walproof.before_' || md5(__PUB__),
    (stack || jsonb_build_array(walproof.published_shapes(__PUB__)))::text, true);
  IF jsonb_array_length(stack) = 0 THEN
    PERFORM set_config('walproof.rewritten_' || md5(__PUB__), '', true);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION walproof.__FN_REWRITE__() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM set_config('walproof.rewritten_' || md5(__PUB__),
    coalesce(current_setting('walproof.rewritten_' || md5(__PUB__), true), '') || ' '
      || pg_event_trigger_table_rewrite_oid()::text,
    true);
END
$fn$;

CREATE OR REPLACE FUNCTION walproof.__FN_END__() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  publication text := __PUB__;
  before_text text := current_setting('walproof.before_' || md5(__PUB__), true);
  rewritten text[] := string_to_array(
    btrim(coalesce(current_setting('walproof.rewritten_' || md5(__PUB__), true), '')), ' ');
  stack jsonb;
  before jsonb;
  after jsonb;
  relid text;
  old jsonb;
  new jsonb;
  shape jsonb;
  kind text;
  rows_follow boolean;
  columns jsonb;
  tables jsonb := '[]';
  reload text[] := '{}';
  retyped text[] := '{}';
BEGIN
  IF coalesce(before_text, '') = '' THEN
    RETURN; -- the start trigger did not run for this command (capture installed meanwhile)
  END IF;
  stack := before_text::jsonb;
  before := stack -> -1;
  stack := stack - (-1);
  after := walproof.published_shapes(publication);
  PERFORM set_config('walproof.before_' || md5(publication), stack::text, true);
  IF jsonb_array_length(stack) = 0 THEN
    PERFORM set_config('walproof.rewritten_' || md5(publication), '', true);
  END IF;
  -- A type's text output can change without touching any table (an enum value renamed, an
  -- attribute added to a composite): the tables with a column of that type send their rows.
  IF tg_tag IN ('ALTER TYPE', 'ALTER DOMAIN') THEN
    SELECT coalesce(array_agg(DISTINCT a.attrelid::text), '{}') INTO retyped
    FROM pg_event_trigger_ddl_commands() d
    JOIN pg_type t ON t.oid = d.objid
    JOIN pg_attribute a
      ON a.atttypid = t.oid OR a.atttypid = t.typarray
      OR a.atttypid IN (SELECT b.oid FROM pg_type b WHERE b.typbasetype = t.oid)
    WHERE a.attnum > 0 AND NOT a.attisdropped AND after ? a.attrelid::text;
  END IF;
  FOR relid IN
    SELECT k FROM (SELECT jsonb_object_keys(before) AS k
                   UNION SELECT jsonb_object_keys(after)) keys ORDER BY k::oid
  LOOP
    old := before -> relid;
    new := after -> relid;
    rows_follow := false;
    IF old IS NULL THEN
      kind := CASE WHEN tg_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
                   THEN 'created' ELSE 'published' END;
      -- (CREATE TABLE AS: pgoutput sends the rows it writes, like any insert)
      rows_follow := kind = 'published';
    ELSIF new IS NULL THEN
      kind := CASE WHEN EXISTS (SELECT 1 FROM pg_class WHERE oid = relid::oid)
                   THEN 'unpublished' ELSE 'dropped' END;
    ELSE
      rows_follow := relid = ANY (rewritten) OR relid = ANY (retyped)
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(new->'columns') nc
                   WHERE coalesce(old->'generated', '[]') @> jsonb_build_array(nc->'attnum'))
        -- a new column that has a value in existing rows: ADD COLUMN ... DEFAULT
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(new->'columns') nc
                   WHERE (nc->>'has_missing')::boolean
                     AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(old->'columns') oc
                                     WHERE oc->'attnum' = nc->'attnum'))
        -- a column whose type changed without a rewrite
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(new->'columns') nc
                   JOIN jsonb_array_elements(old->'columns') oc ON oc->'attnum' = nc->'attnum'
                   WHERE oc->'type_oid' <> nc->'type_oid')
        -- other key columns: a row's new key needs its values, which a committer only holds
        -- as hashes
        OR (SELECT jsonb_agg(c->'attnum' ORDER BY (c->>'attnum')::int)
            FROM jsonb_array_elements(old->'columns') c WHERE (c->>'key')::boolean)
           IS DISTINCT FROM
           (SELECT jsonb_agg(c->'attnum' ORDER BY (c->>'attnum')::int)
            FROM jsonb_array_elements(new->'columns') c WHERE (c->>'key')::boolean);
      IF old = new AND NOT rows_follow THEN
        CONTINUE;
      END IF;
      kind := 'altered';
    END IF;
    shape := coalesce(new, old);
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'name', nc->'name',
        'type_oid', nc->'type_oid',
        'type_modifier', nc->'type_modifier',
        'key', nc->'key',
        'was', CASE WHEN new IS NULL THEN to_jsonb(ni - 1) ELSE
                 (SELECT to_jsonb(oi - 1)
                  FROM jsonb_array_elements(old->'columns') WITH ORDINALITY AS y(oc, oi)
                  WHERE oc->'attnum' = nc->'attnum') END)
        ORDER BY ni), '[]'::jsonb)
      INTO columns
      FROM jsonb_array_elements(shape->'columns') WITH ORDINALITY AS x(nc, ni);
    tables := tables || jsonb_build_array(jsonb_build_object(
      'oid', relid::int8,
      'schema', shape->'schema',
      'name', shape->'name',
      'change', kind,
      'replica_identity', shape->'replica_identity',
      'columns', columns,
      'rows_follow', rows_follow));
    IF rows_follow THEN
      reload := reload || relid;
    END IF;
    -- An enclosing DDL must not describe this change again: its "before" takes it.
    IF jsonb_array_length(stack) > 0 THEN
      stack := jsonb_set(stack, '{-1}', CASE WHEN new IS NULL THEN (stack -> -1) - relid
                                             ELSE jsonb_set(stack -> -1, ARRAY[relid], new) END);
    END IF;
  END LOOP;
  IF jsonb_array_length(stack) > 0 THEN
    PERFORM set_config('walproof.before_' || md5(publication), stack::text, true);
  END IF;
  IF jsonb_array_length(tables) = 0 THEN
    RETURN;
  END IF;
  PERFORM pg_logical_emit_message(true, 'walproof.ddl.v1', jsonb_build_object(
    'publication', publication,
    'tag', tg_tag,
    'statement', current_query(),
    'tables', tables)::text);
  FOREACH relid IN ARRAY reload LOOP
    PERFORM walproof.emit_rows(publication, relid::oid, after -> relid);
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS __TRG_START__;
CREATE EVENT TRIGGER __TRG_START__ ON ddl_command_start
  EXECUTE FUNCTION walproof.__FN_START__();
DROP EVENT TRIGGER IF EXISTS __TRG_REWRITE__;
CREATE EVENT TRIGGER __TRG_REWRITE__ ON table_rewrite
  EXECUTE FUNCTION walproof.__FN_REWRITE__();
DROP EVENT TRIGGER IF EXISTS __TRG_END__;
CREATE EVENT TRIGGER __TRG_END__ ON ddl_command_end
  EXECUTE FUNCTION walproof.__FN_END__();
-- Also under session_replication_role = replica (restores, some migration tools).
ALTER EVENT TRIGGER __TRG_START__ ENABLE ALWAYS;
ALTER EVENT TRIGGER __TRG_REWRITE__ ENABLE ALWAYS;
ALTER EVENT TRIGGER __TRG_END__ ENABLE ALWAYS;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA walproof FROM PUBLIC;
COMMENT ON EVENT TRIGGER __TRG_END__ IS __VERSION_COMMENT__;
