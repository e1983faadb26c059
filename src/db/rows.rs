//! Multi-row INSERTs with bound values, shared by bulk loads and the end-of-batch writes.

/// A bound value.
#[derive(Clone, Debug)]
pub enum Val {
    /// An integer.
    I(i64),
    /// An integer or NULL.
    O(Option<i64>),
    /// Text.
    S(String),
    /// Text known when the program was built (bulk rows share it instead of copying it).
    T(&'static str),
    /// NULL text.
    N,
    /// A real number or NULL.
    F(Option<f64>),
    /// Bytes or NULL.
    B(Option<Vec<u8>>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}

impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::O(v)
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::S(v)
    }
}

impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        v.map_or(Val::N, Val::S)
    }
}

/// A query with its arguments.
pub type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds one value.
pub fn bind<'q>(q: Query<'q>, v: &Val) -> Query<'q> {
    match v {
        Val::I(x) => q.bind(*x),
        Val::O(x) => q.bind(*x),
        Val::S(x) => q.bind(x.clone()),
        Val::T(x) => q.bind(*x),
        Val::N => q.bind(None::<String>),
        // sqlx-core 0.9.0 sends a NULL of kind Double to PostgreSQL as a float4 NULL (its
        // Real and Double are swapped in `AnyArguments::convert_into`), and the statement,
        // kept prepared with that type, then refuses a real coordinate (a case by grid, then
        // one with lng/lat: 500 and the batch lost). A NULL of kind Real goes as float8.
        Val::F(None) => q.bind(None::<f32>),
        Val::F(Some(x)) => q.bind(*x),
        Val::B(x) => q.bind(x.clone()),
    }
}

/// Arguments per statement, at most: well under both engines' limits, and few distinct
/// statement texts for their statement caches. (Binding was once quadratic in the argument
/// count on SQLite — 30,000 arguments took a second — see `lite::numbered`.)
const ARGS_PER_STATEMENT: usize = 600;

/// Inserts `rows` of `cols` values each: `head` (`INSERT INTO t (a, b)`), `VALUES (…), (…)`,
/// then `tail` (an `ON CONFLICT` clause, or empty), as few statements as the argument bound
/// allows.
pub async fn insert_rows<E>(on: &mut E, head: &str, cols: usize, rows: &[Vec<Val>], tail: &str) -> Result<(), sqlx::Error>
where
    for<'c> &'c mut E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let per = (ARGS_PER_STATEMENT / cols.max(1)).max(1);
    for chunk in rows.chunks(per) {
        let mut sql = values_text(head, chunk.len(), cols, '$');
        if !tail.is_empty() {
            sql.push(' ');
            sql.push_str(tail);
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            debug_assert_eq!(row.len(), cols);
            for v in row {
                q = bind(q, v);
            }
        }
        q.execute(&mut *on).await?;
    }
    Ok(())
}

/// `head VALUES (…), (…)` for `rows` rows of `cols` arguments each, numbered from 1 after
/// `mark` (`$` for sqlx, `?` for SQLite's own binding by position).
pub(crate) fn values_text(head: &str, rows: usize, cols: usize, mark: char) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 7 + 8);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push(mark);
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// A table that transactions append rows to at the end of their batch (see
/// [`super::Deferred`]): rows nothing reads inside the transaction that writes them.
pub trait Appendable: Send + 'static {
    /// The kind's place at the end of a batch ([`super::Deferred::ORDER`], unique per kind).
    const ORDER: u8;
    /// `INSERT INTO t (a, b, …)`.
    const HEAD: &'static str;
    /// Values per row.
    const COLS: usize;
    /// What follows the values (an `ON CONFLICT` clause), if anything.
    const TAIL: &'static str = "";
}

/// Rows appended to `T` at the end of the batch, one multi-row INSERT for all of its requests.
pub struct Appended<T> {
    rows: Vec<Vec<Val>>,
    table: std::marker::PhantomData<fn() -> T>,
}

impl<T> Default for Appended<T> {
    fn default() -> Self {
        Appended { rows: Vec::new(), table: std::marker::PhantomData }
    }
}

impl<T: Appendable> Appended<T> {
    /// Adds a row of `T::COLS` values.
    pub fn push(&mut self, row: Vec<Val>) {
        debug_assert_eq!(row.len(), T::COLS);
        self.rows.push(row);
    }
}

impl<T: Appendable> super::Deferred for Appended<T> {
    const ORDER: u8 = T::ORDER;

    fn absorb(&mut self, later: Self) {
        self.rows.extend(later.rows);
    }

    async fn write(self, at: &mut super::Finish<'_>) -> Result<(), sqlx::Error> {
        insert_rows(at, T::HEAD, T::COLS, &self.rows, T::TAIL).await
    }
}
