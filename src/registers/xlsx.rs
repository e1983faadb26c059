//! Excel for every register: export of the filtered list, a template (Chinese headers, a
//! comment row explaining each column, drop-downs for value lists), and import with a dry run
//! that reports every bad cell as row, column and reason, committing nothing unless all pass.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use rust_xlsxwriter::{DataValidation, Format, Workbook, XlsxError};
use serde::Serialize;
use serde_json::{Map, Value};

use super::store::{self, ListQuery};
use super::{Register, Ty, display};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};

fn x(e: XlsxError) -> AppError {
    AppError::Internal(format!("xlsx: {e}"))
}

/// Header of a field: its title, with an asterisk when required.
fn header(f: &super::Field) -> String {
    if f.required { format!("{}*", f.title) } else { f.title.to_string() }
}

fn help(f: &super::Field) -> String {
    let base = match f.ty {
        Ty::Date => "日期，如 2026-03-01".to_string(),
        Ty::Money => "金额（元）".into(),
        Ty::Int => "整数".into(),
        Ty::Number => "数字".into(),
        Ty::Score => "分数，0～100".into(),
        Ty::Bool => "是 / 否".into(),
        Ty::Enum(v) => format!("从下拉列表选择：{}", v.join("、")),
        Ty::CreditCode => "18 位统一社会信用代码".into(),
        Ty::Mobile => "11 位手机号".into(),
        Ty::Phone => "手机号，或带区号的座机号（如 0856-1234567）".into(),
        Ty::IdNumber => "18 位身份证号（加密保存）".into(),
        Ty::Secret => "加密保存".into(),
        Ty::Node(kinds) => format!("{}编码", crate::registers::node_kinds(kinds)),
        Ty::Unit(kinds) if !kinds.is_empty() => format!("单位编码（{}类单位）", kinds.join("、")),
        Ty::Unit(_) => "单位编码".into(),
        Ty::Code => "编码：字母、数字、下划线或连字符".into(),
        Ty::Text | Ty::LongText => "文字".into(),
    };
    let base = match f.range {
        Some((lo, hi)) => format!("{base}，{lo}～{hi}"),
        None => base,
    };
    let req = if f.required { "必填。" } else { "选填。" };
    // A field's help that already says what the type says (加密保存…) is not followed by it.
    if f.help.is_empty() || f.help.contains(&base) {
        format!("说明：{req}{}", if f.help.is_empty() { &base } else { f.help })
    } else {
        format!("说明：{req}{}；{base}", f.help)
    }
}

/// The import template.
pub fn template(reg: &Register) -> AppResult<Vec<u8>> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(reg.title).map_err(x)?;
    let bold = Format::new().set_bold();
    let grey = Format::new().set_italic().set_font_color("#666666").set_text_wrap();
    for (c, f) in reg.fields.iter().enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, header(f), &bold).map_err(x)?;
        ws.write_string_with_format(1, c, help(f), &grey).map_err(x)?;
        ws.set_column_width(c, 18).map_err(x)?;
        if let Ty::Enum(values) = f.ty {
            let dv = DataValidation::new().allow_list_strings(values).map_err(x)?;
            ws.add_data_validation(2, c, 10_000, c, &dv).map_err(x)?;
        }
        if matches!(f.ty, Ty::Bool) {
            let dv = DataValidation::new().allow_list_strings(&["是", "否"]).map_err(x)?;
            ws.add_data_validation(2, c, 10_000, c, &dv).map_err(x)?;
        }
    }
    ws.set_row_height(1, 45).map_err(x)?;
    ws.set_freeze_panes(2, 0).map_err(x)?;
    wb.save_to_buffer().map_err(x)
}

/// The filtered list as xlsx (personal data masked, computed columns included).
pub async fn export(st: &AppState, p: &Principal, reg: &Register, q: &ListQuery) -> AppResult<Vec<u8>> {
    let mut q = q.clone();
    q.page = Some(1);
    q.per_page = Some(crate::db::list::EXPORT_MAX);
    let page = store::list(st, p, reg, &q).await?;
    let summary = format!("导出台账「{}」{} 条（个人信息脱敏）", reg.title, page.items.len());
    crate::audit::exported(st, p, "register", &summary).await?;
    let mut headers: Vec<&str> = reg.fields.iter().filter(|f| !matches!(f.ty, Ty::Secret)).map(|f| f.title).collect();
    headers.extend(reg.computed.iter().map(|c| c.title));
    let rows = page.items.iter().map(|it| {
        let mut row: Vec<crate::web::xlsx::Cell> = reg
            .fields
            .iter()
            .filter(|f| !matches!(f.ty, Ty::Secret))
            .map(|f| match (f.ty, it.get(f.key)) {
                (Ty::Int | Ty::Number | Ty::Money | Ty::Score, Some(Value::Number(n))) => {
                    crate::web::xlsx::Cell::Num(n.as_f64().unwrap_or(0.0))
                }
                // Already shown (masked) by the list: decoding it again gave an empty cell.
                (Ty::IdNumber | Ty::Mobile | Ty::Phone, Some(Value::String(s))) => s.as_str().into(),
                (_, Some(v)) => crate::web::xlsx::Cell::Text(display(f, v, &st.keyring)),
                (_, None) => "".into(),
            })
            .collect();
        for c in reg.computed {
            row.push(match it.get(c.key) {
                Some(Value::Number(n)) => crate::web::xlsx::Cell::Num(n.as_f64().unwrap_or(0.0)),
                Some(Value::String(s)) => s.as_str().into(),
                _ => "".into(),
            });
        }
        row
    });
    crate::web::xlsx::workbook(reg.title, &headers, rows)
}

/// One bad cell.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CellError {
    /// Excel row number (1-based, as the operator sees it).
    pub row: usize,
    /// Column title.
    pub column: String,
    /// What is wrong.
    pub message: String,
}

/// Outcome of an import.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// True when every row passed (and, unless a dry run, was written).
    pub ok: bool,
    /// Rows written (0 on a dry run or on any error).
    pub created: usize,
    /// Rows that would be written.
    pub valid_rows: usize,
    /// Every bad cell.
    pub errors: Vec<CellError>,
}

fn cell_value(d: &Data) -> Value {
    match d {
        Data::Empty => Value::Null,
        Data::String(s) => Value::String(s.clone()),
        Data::Int(i) => Value::String(i.to_string()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Value::String(format!("{}", *f as i64)),
        Data::Float(f) => Value::String(f.to_string()),
        Data::Bool(b) => Value::Bool(*b),
        // A date cell as the date it shows (its serial counts days from 1899-12-30).
        Data::DateTime(t) => {
            // The workbook's own date system (1900, or 1904 from an old Mac Excel).
            let (y, m, d, ..) = t.to_ymd_hms_milli();
            Value::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
        // Refused before (see `unreadable`).
        Data::Error(e) => Value::String(e.to_string()),
    }
}

/// Rows, columns and filled cells an import reads at most. The sheet is read cell by cell:
/// as one grid, a single cell placed far away (`XFD1048576`) in a small file would make it
/// billions of cells.
const MAX_ROWS: u32 = 100_000;
const MAX_COLS: u32 = 200;
const MAX_CELLS: usize = 2_000_000;

/// What a workbook may unpack to. A 400 KB file holding one 400 MB cell took 2 GB of memory
/// to read (an xlsx is a zip: text compresses a thousandfold); 100,000 real rows unpack to
/// tens of MB.
const MAX_UNPACKED: u64 = 128 << 20;

/// What a zip's entries unpack to, counted by unpacking them into nothing (a declared size can
/// lie), up to just past `limit` (`None`: not a zip; calamine then says so).
fn unpacked_size(bytes: &[u8], limit: u64) -> Option<u64> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut total: u64 = 0;
    for i in 0..z.len() {
        // An entry that cannot be unpacked (an unknown method, encrypted) cannot be measured:
        // the file counts as too big rather than as not a zip, which skipped the check.
        let Ok(entry) = z.by_index(i) else { return Some(u64::MAX) };
        match std::io::copy(&mut entry.take(limit + 1 - total), &mut std::io::sink()) {
            Ok(n) => total += n,
            Err(_) => return Some(u64::MAX),
        }
        if total > limit {
            break;
        }
    }
    Some(total)
}

/// A row of the sheet with its number as Excel shows it.
type Numbered = (usize, Vec<Data>);

/// The first sheet from its first filled row and column on.
struct Sheet {
    /// Header titles (a required field's asterisk dropped).
    head: Vec<String>,
    /// The header's row number as Excel shows it: a table may start below a title (C3).
    head_row: usize,
    /// The header's first column (0-based), to name columns by their letters.
    left: u32,
    /// The rows after the header, with their numbers as Excel shows them.
    rows: Vec<Numbered>,
}

/// Reads the first sheet of a workbook.
fn first_sheet(bytes: &[u8]) -> AppResult<Sheet> {
    let bad = |m: &str| AppError::field("file", m.to_string());
    let too_big = || bad(&format!("表格过大：最多 {MAX_ROWS} 行、{MAX_COLS} 列"));
    if unpacked_size(bytes, MAX_UNPACKED).is_some_and(|n| n > MAX_UNPACKED) {
        return Err(bad(&format!("表格解压后超过 {} MB（或含有无法读取的内容），请拆分后分批导入", MAX_UNPACKED >> 20)));
    }
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).map_err(|_| bad("不是有效的 xlsx 文件"))?;
    let name = wb.sheet_names().first().cloned().ok_or_else(|| bad("文件中没有工作表"))?;
    let mut reader = wb.worksheet_cells_reader(&name).map_err(|_| bad("无法读取第一个工作表"))?;
    let mut cells: Vec<(u32, u32, Data)> = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(|_| bad("无法读取第一个工作表"))? {
        let (r, c) = cell.get_position();
        let value = Data::from(cell.get_value().clone());
        if matches!(value, Data::Empty) {
            continue;
        }
        if r >= MAX_ROWS || c >= MAX_COLS || cells.len() >= MAX_CELLS {
            return Err(too_big());
        }
        cells.push((r, c, value));
    }
    let (Some(top), Some(left)) = (cells.iter().map(|x| x.0).min(), cells.iter().map(|x| x.1).min()) else {
        // Said of the first sheet: a file whose data was on its second sheet was called empty.
        return Err(bad(&format!("第一个工作表「{name}」是空的：只导入第一个工作表，请把数据放在第一个工作表中")));
    };
    let bottom = cells.iter().map(|x| x.0).max().unwrap_or(top);
    let width = cells.iter().map(|x| x.1).max().unwrap_or(left) - left + 1;
    if (bottom - top + 1) as usize * width as usize > MAX_CELLS {
        return Err(too_big());
    }
    let mut rows = vec![vec![Data::Empty; width as usize]; (bottom - top + 1) as usize];
    for (r, c, v) in cells {
        rows[(r - top) as usize][(c - left) as usize] = v;
    }
    let mut rows = rows.into_iter();
    let head = rows.next().unwrap_or_default().iter().map(|c| c.to_string().trim().trim_end_matches('*').to_string()).collect();
    // Counted from the sheet's first row, not the header's: a table from C3 down had its row 5
    // reported as row 3.
    let head_row = top as usize + 1;
    Ok(Sheet { head, head_row, left, rows: rows.enumerate().map(|(i, r)| (head_row + 1 + i, r)).collect() })
}

/// Why a cell cannot be read as the field's value, before its text is checked: an error value
/// (#N/A from a lookup) is no text to take, and a number cell holding an identifier has already
/// lost its last digits (Excel keeps 15), so the check of its text would blame a typo.
fn unreadable(f: &super::Field, d: &Data) -> Option<String> {
    let numeric = matches!(f.ty, Ty::Int | Ty::Number | Ty::Money | Ty::Score | Ty::Date);
    match d {
        Data::Error(e) => Some(format!("单元格是错误值 {e}（如公式查找不到），请填写实际内容")),
        Data::Float(x) if !numeric && x.abs() >= 1e15 => Some(LONG_NUMBER.into()),
        Data::Int(i) if !numeric && i.unsigned_abs() >= 1_000_000_000_000_000 => Some(LONG_NUMBER.into()),
        _ => None,
    }
}

/// A number cell of 16 digits or more (an 18-digit ID number typed into a cell left as a
/// number): Excel keeps 15 significant digits, so the rest were lost when it was typed.
const LONG_NUMBER: &str = "单元格是数字格式，存不下 15 位以上的号码（末几位已变成 0）：请把此列设为文本格式后重新填写";

/// The letter of a column of the sheet (0-based), as Excel names it.
fn column_letter(c: u32) -> String {
    rust_xlsxwriter::utility::column_number_to_name(c.min(u16::MAX as u32) as u16)
}

/// Imports an xlsx (first sheet; header row of titles, an optional 说明 row): validates every
/// cell, and writes all rows in one transaction only if none failed and it is not a dry run.
pub async fn import(
    st: &AppState,
    p: &Principal,
    reg: &Register,
    bytes: &[u8],
    dry_run: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> AppResult<ImportReport> {
    // Each row's scope is checked with its fields, as a form's is.
    store::may_write_at(p, reg, None)?;
    // Read everything first: the workbook need not live across the validation below.
    let sheet = first_sheet(bytes)?;
    // Map each field to its column by title.
    let mut cols = Vec::new();
    let mut errors = Vec::new();
    let at_head = |column: &str, message: String| CellError { row: sheet.head_row, column: column.into(), message };
    for f in reg.fields {
        let found: Vec<usize> = sheet.head.iter().enumerate().filter(|(_, h)| *h == f.title).map(|(i, _)| i).collect();
        match found.as_slice() {
            [i] => cols.push((f, *i)),
            [] if f.required => errors.push(at_head(f.title, "缺少此列（请使用导入模板）".into())),
            [] => {}
            // Two 社区 columns: which one is meant is not for the import to guess (the first won).
            more => {
                let letters: Vec<String> = more.iter().map(|i| column_letter(sheet.left + *i as u32)).collect();
                errors.push(at_head(f.title, format!("此列出现了 {} 次（{} 列），请只保留一列", more.len(), letters.join("、"))));
            }
        }
    }
    if !errors.is_empty() {
        return Ok(ImportReport { ok: false, created: 0, valid_rows: 0, errors });
    }
    let total = sheet.rows.len();
    // The rows that passed, and their numbers.
    let (mut valid, mut numbers) = (Vec::new(), Vec::new());
    for (n, (excel_row, cells)) in sheet.rows.into_iter().enumerate() {
        progress(n, total);
        let first = cells.first().map(|c| c.to_string()).unwrap_or_default();
        // Only the template's own help row (its first, each cell 说明：…): a row whose text
        // begins with 说明 (说明书归档制度) is data.
        if (n == 0 && first.starts_with("说明：")) || cells.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        let mut raw = Map::new();
        // Fields whose cell was refused as read: their value's own checks would only add to it.
        let mut refused = Vec::new();
        for (f, i) in &cols {
            let cell = cells.get(*i).unwrap_or(&Data::Empty);
            if let Some(message) = unreadable(f, cell) {
                errors.push(CellError { row: excel_row, column: f.title.into(), message });
                refused.push(f.key);
                continue;
            }
            raw.insert(f.key.into(), cell_value(cell));
        }
        match store::validate(st, p, reg, &raw).await {
            Ok(v) if refused.is_empty() => {
                valid.push(v);
                numbers.push(excel_row);
            }
            Ok(_) => {}
            Err(fe) => {
                for e in fe.into_iter().filter(|e| !refused.contains(&e.field.as_str())) {
                    // A row outside the scope of a register without a scope field is said by its
                    // Chinese name (管辖范围), not by the key `scope`.
                    let title = store::field_title(reg, &e.field).to_string();
                    let msg = e.message.strip_prefix(&format!("{title}：")).unwrap_or(&e.message).to_string();
                    errors.push(CellError { row: excel_row, column: title, message: msg });
                }
            }
        }
    }
    progress(total, total);
    // A row whose unique fields repeat an active row's, or an earlier row's of the file: the
    // same export imported twice would otherwise double the register (and its figures).
    let taken = |errors: &mut Vec<CellError>, positions: Vec<usize>| {
        let column = reg.field(reg.unique[0]).map(|f| f.title).unwrap_or_default();
        let message = store::taken_message(reg);
        errors.extend(positions.into_iter().map(|i| CellError {
            row: numbers[i],
            column: column.into(),
            message: message.clone(),
        }));
    };
    if !reg.unique.is_empty() {
        taken(&mut errors, store::repeats(reg, store::taken_keys(st, reg).await?, &valid, None));
    }
    let mut created = 0;
    if errors.is_empty() && !dry_run {
        match store::insert_all(st, p, reg, &valid).await? {
            Ok(n) => created = n,
            // Taken since the check above, by an import or a form at the same time: said as
            // that check says it, by row and column (a bare field error named neither).
            Err(positions) => taken(&mut errors, positions),
        }
    }
    Ok(ImportReport { ok: errors.is_empty(), created, valid_rows: valid.len(), errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workbook_is_measured_unpacked() {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("xl/sharedStrings.xml", deflate).unwrap();
        std::io::Write::write_all(&mut z, &vec![b'a'; 200_000]).unwrap();
        let bytes = z.finish().unwrap().into_inner();
        assert!(bytes.len() < 2_000, "packs small: {}", bytes.len());
        assert_eq!(unpacked_size(&bytes, 1 << 20), Some(200_000));
        assert_eq!(unpacked_size(&bytes, 10_000), Some(10_001), "counting stops past the limit");
        assert_eq!(unpacked_size(b"not a zip", 10), None);
        // An entry this build cannot unpack (its method patched to bzip2) is not skipped over.
        let mut odd = bytes.clone();
        let local = odd.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
        odd[local + 8..local + 10].copy_from_slice(&12u16.to_le_bytes());
        let central = odd.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        odd[central + 10..central + 12].copy_from_slice(&12u16.to_le_bytes());
        assert_eq!(unpacked_size(&odd, 1 << 20), Some(u64::MAX));
    }
}
