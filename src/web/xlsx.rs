//! One way to write an Excel export, shared by every list that offers one.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::error::{AppError, AppResult};

/// A cell value.
pub enum Cell {
    /// Text (codes stay text so leading zeros survive).
    Text(String),
    /// A number.
    Num(f64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Num(n as f64)
    }
}

/// Characters Excel holds in one cell.
const CELL_MAX: usize = 32_767;

/// `s` cut to what one cell holds, marked where it was cut (a longer text would make the whole
/// export fail).
fn fit(s: String) -> String {
    const CUT: &str = "…（超出 Excel 单元格上限，已截断）";
    if s.chars().count() <= CELL_MAX {
        return s;
    }
    let keep = CELL_MAX - CUT.chars().count();
    s.chars().take(keep).chain(CUT.chars()).collect()
}

fn x(e: XlsxError) -> AppError {
    AppError::Internal(format!("xlsx: {e}"))
}

/// Builds a one-sheet workbook with a bold, frozen header row and sensible column widths.
pub fn workbook(sheet: &str, headers: &[&str], rows: impl IntoIterator<Item = Vec<Cell>>) -> AppResult<Vec<u8>> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(x)?;
    let bold = Format::new().set_bold();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count() * 2 + 2).collect();
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold).map_err(x)?;
    }
    for (i, row) in rows.into_iter().enumerate() {
        let r = i as u32 + 1;
        for (c, cell) in row.into_iter().enumerate() {
            match cell {
                Cell::Text(s) => {
                    if let Some(w) = widths.get_mut(c) {
                        *w = (*w).max(s.chars().map(|ch| if ch.is_ascii() { 1 } else { 2 }).sum::<usize>() + 2).min(60);
                    }
                    ws.write_string(r, c as u16, fit(s)).map_err(x)?
                }
                Cell::Num(n) => ws.write_number(r, c as u16, n).map_err(x)?,
            };
        }
    }
    for (c, w) in widths.iter().enumerate() {
        ws.set_column_width(c as u16, *w as f64).map_err(x)?;
    }
    ws.set_freeze_panes(1, 0).map_err(x)?;
    wb.save_to_buffer().map_err(x)
}

/// The download response, with the (Chinese) file name encoded per RFC 6266.
pub fn download(filename: &str, bytes: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"export.xlsx\"; filename*=UTF-8''{}", super::urlencode(filename));
    (
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_text_is_cut_to_one_cell() {
        let long = "长".repeat(40_000);
        let cut = fit(long.clone());
        assert_eq!(cut.chars().count(), CELL_MAX);
        assert!(cut.ends_with("已截断）"));
        assert_eq!(fit("短".into()), "短");
        let book = workbook("表", &["内容"], [vec![Cell::Text(long)]]).expect("an export with an overlong cell");
        assert!(book.starts_with(b"PK"));
    }
}
