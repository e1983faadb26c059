-- Every process serving a PostgreSQL database keeps recent case pages in memory and must
-- hear of any change to a case, whoever makes it (another node, the CLI, psql): a change
-- notifies `linli_cases` with `id:version`, new cases with `+` (once per statement: lists
-- change), a deletion with `*` (forget everything). A change or deletion of a step or a photo
-- notifies `case_id:0` (linli only ever adds them, with a change to the case), and any change
-- to a category `*` (names and who may claim are shown in pages and lists). The notification
-- is delivered at commit, and not at all if the transaction rolls back.
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
CREATE FUNCTION linli_case_part_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linli_cases', OLD.case_id::text || ':0');
    RETURN NULL;
END
$$;
CREATE TRIGGER case_history_changed AFTER UPDATE OR DELETE ON case_history FOR EACH ROW EXECUTE FUNCTION linli_case_part_changed();
CREATE TRIGGER case_photos_changed AFTER UPDATE OR DELETE ON case_photos FOR EACH ROW EXECUTE FUNCTION linli_case_part_changed();
CREATE FUNCTION linli_categories_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linli_cases', '*');
    RETURN NULL;
END
$$;
CREATE TRIGGER categories_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON categories FOR EACH STATEMENT EXECUTE FUNCTION linli_categories_changed();
