-- Privileges of Warden's application role on PostgreSQL (AUDIT_SPEC.md section 4).
--
-- The tables belong to the migration role (MIGRATION_DATABASE_URL), which runs `migrate`.
-- The application (web, worker, beat: DATABASE_URL) connects as another role that gets:
--
--   audit_auditrecord, audit_checkpoint, audit_treenode   SELECT, INSERT       (append-only)
--   audit_loghead                                         SELECT, INSERT, UPDATE
--   every other table of the schema                       SELECT, INSERT, UPDATE, DELETE
--   every sequence of the schema                          USAGE, SELECT
--
-- and nothing else: no UPDATE, DELETE or TRUNCATE on the log, and, not being the owner, no
-- ALTER TABLE (so no DISABLE TRIGGER) and no DROP. The triggers stay as the second line of
-- defence. INSERT on the head row is for the first append of a new log; SELECT ... FOR
-- UPDATE on it needs UPDATE.
--
-- Run it as the migration role (or a superuser) after every `migrate`, since new tables need
-- their grants (it is idempotent), naming the application role in `warden.app_role`:
--
--   PGOPTIONS='-c warden.app_role=warden_app' \
--     psql "$MIGRATION_DATABASE_URL" -v ON_ERROR_STOP=1 -f audit/sql/app_role.sql
--
-- It refuses to run when the application role owns an audit table, is a superuser, or is a
-- member of the tables' owner (any of which would let it disable the triggers).

DO $grants$
DECLARE
    app_role text := current_setting('warden.app_role', true);
    schema_name text := current_schema();
    append_only text[] := ARRAY['audit_auditrecord', 'audit_checkpoint', 'audit_treenode'];
    audit_tables text[] := append_only || ARRAY['audit_loghead'];
    owner_name text;
    table_name text;
BEGIN
    IF app_role IS NULL OR app_role = '' THEN
        RAISE EXCEPTION 'set warden.app_role to the application role, e.g. '
            'PGOPTIONS=''-c warden.app_role=warden_app''';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        RAISE EXCEPTION 'role % does not exist', app_role;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role AND rolsuper) THEN
        RAISE EXCEPTION 'role % is a superuser: it could bypass every privilege', app_role;
    END IF;
    FOREACH table_name IN ARRAY audit_tables LOOP
        SELECT tableowner INTO owner_name FROM pg_tables
            WHERE schemaname = schema_name AND tablename = table_name;
        IF owner_name IS NULL THEN
            RAISE EXCEPTION 'table %.% does not exist: run migrate first', schema_name, table_name;
        END IF;
        IF pg_has_role(app_role, owner_name, 'MEMBER') THEN
            RAISE EXCEPTION 'role % is (a member of) %, the owner of %: use another role',
                app_role, owner_name, table_name;
        END IF;
    END LOOP;

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
        schema_name, app_role);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, app_role);

    FOREACH table_name IN ARRAY audit_tables LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC', schema_name, table_name);
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %I', schema_name, table_name, app_role);
    END LOOP;
    FOREACH table_name IN ARRAY append_only LOOP
        EXECUTE format('GRANT SELECT, INSERT ON TABLE %I.%I TO %I', schema_name, table_name, app_role);
    END LOOP;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %I.audit_loghead TO %I', schema_name, app_role);
END
$grants$;
