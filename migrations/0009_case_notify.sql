-- Every process serving a PostgreSQL database keeps recent case pages in memory and must
-- hear of any change to a case, whoever makes it (another node, the CLI, psql): a change
-- notifies `linli_cases` with `id:version`, new cases with `+` (once per statement: lists
-- change), a deletion with `*` (forget everything). The notification is delivered at commit,
-- and not at all if the transaction rolls back.
-- SQLite has no such thing and needs none (see src/db/cache.rs): this file is PostgreSQL's only.
-- {{POSTGRES_ONLY}}
CREATE FUNCTION linli_case_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify('linli_cases', NEW.id::text || ':' || NEW.version::text);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('linli_cases', '+');
    ELSE
        PERFORM pg_notify('linli_cases', '*');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_changed AFTER UPDATE ON cases FOR EACH ROW EXECUTE FUNCTION linli_case_changed();
CREATE TRIGGER cases_added AFTER INSERT ON cases FOR EACH STATEMENT EXECUTE FUNCTION linli_case_changed();
CREATE TRIGGER cases_deleted AFTER DELETE OR TRUNCATE ON cases FOR EACH STATEMENT EXECUTE FUNCTION linli_case_changed();
