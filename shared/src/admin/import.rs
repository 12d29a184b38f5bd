//! The completions CSV an admin imports (the seed's fallback when webhooks
//! fail): `email,course,completion_date[,points]`, RFC 4180 quoting, UTF-8.
//!
//! A file that is not that shape (wrong header, not UTF-8, a row with the
//! wrong number of columns, an unclosed quote) is refused whole, naming the
//! line, so nothing from it is applied. A row whose values are wrong (a bad
//! email, an unknown course, a bad date) is reported on its own, with its line.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::domain::{Course, CourseCatalog, Email};

/// Most rows one request takes; the CLI splits bigger files.
pub const MAX_IMPORT_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {0}: the file is not UTF-8 from here")]
    Encoding(usize),
    #[error("the file is empty: it needs the header email,course,completion_date[,points]")]
    Empty,
    #[error("line 1: the header must be email,course,completion_date or email,course,completion_date,points, not `{0}`")]
    Header(String),
    #[error("line {line}: {found} columns where the header has {expected}")]
    Columns {
        line: usize,
        found: usize,
        expected: usize,
    },
    #[error("line {0}: a quoted field is not closed")]
    Quote(usize),
    #[error(
        "{rows} rows: one request takes at most {MAX_IMPORT_ROWS} (the CLI splits bigger files)"
    )]
    TooMany { rows: usize },
}

/// One data row as written, with its line number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: usize,
    pub email: String,
    pub course: String,
    pub completion_date: String,
    pub points: Option<String>,
}

/// A row whose values parse: what the completion rule takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow<'c> {
    pub line: usize,
    pub email: Email,
    pub course: &'c Course,
    pub completed_on: DateTime<Utc>,
}

/// Splits `text` into records of fields, honouring quotes (which may hold
/// commas, doubled quotes and line breaks). Each record carries the line it
/// starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let mut out = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start_line) = (1, 1);
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                out.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(CsvError::Quote(start_line));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start_line, fields));
    }
    // Blank lines carry nothing.
    out.retain(|(_, f)| !(f.len() == 1 && f[0].trim().is_empty()));
    Ok(out)
}

/// The line (from 1) byte `offset` is on.
fn line_of(body: &[u8], offset: usize) -> usize {
    1 + body[..offset.min(body.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// The file's rows, or why the whole file is refused.
pub fn parse_csv(body: &[u8]) -> Result<Vec<CsvRow>, CsvError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| CsvError::Encoding(line_of(body, e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let (_, header) = records.next().ok_or(CsvError::Empty)?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let with_points = match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["email", "course", "completion_date"] => false,
        ["email", "course", "completion_date", "points"] => true,
        _ => return Err(CsvError::Header(header.join(","))),
    };
    let expected = names.len();
    let rows: Vec<CsvRow> = records
        .map(|(line, fields)| {
            if fields.len() != expected {
                return Err(CsvError::Columns {
                    line,
                    found: fields.len(),
                    expected,
                });
            }
            let mut fields = fields.into_iter().map(|f| f.trim().to_string());
            let mut next = || fields.next().unwrap_or_default();
            Ok(CsvRow {
                line,
                email: next(),
                course: next(),
                completion_date: next(),
                points: with_points.then(&mut next).filter(|p| !p.is_empty()),
            })
        })
        .collect::<Result<_, _>>()?;
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(CsvError::TooMany { rows: rows.len() });
    }
    Ok(rows)
}

/// A file cut into requests of at most `max_rows` rows each: every piece
/// has the header and one line per row (a line break inside a quoted field
/// becomes a space), with the line each row had in the file. A malformed
/// file is refused here as the server would refuse it.
pub fn split_csv(body: &[u8], max_rows: usize) -> Result<Vec<(String, Vec<usize>)>, CsvError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| CsvError::Encoding(line_of(body, e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let (_, header) = records.next().ok_or(CsvError::Empty)?;
    let expected = header.len();
    let quote = |field: &str| -> String {
        let field = field.replace(['\r', '\n'], " ");
        if field.contains([',', '"']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field
        }
    };
    let header_line = header
        .iter()
        .map(|f| quote(f))
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<(usize, Vec<String>)> = records.collect();
    if let Some((line, fields)) = rows.iter().find(|(_, f)| f.len() != expected) {
        return Err(CsvError::Columns {
            line: *line,
            found: fields.len(),
            expected,
        });
    }
    Ok(rows
        .chunks(max_rows.max(1))
        .map(|chunk| {
            let mut piece = header_line.clone();
            for (_, fields) in chunk {
                piece.push('\n');
                piece.push_str(
                    &fields
                        .iter()
                        .map(|f| quote(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            piece.push('\n');
            (piece, chunk.iter().map(|(line, _)| *line).collect())
        })
        .collect())
}

/// A value as quoted in a reason: cut, so a reason stays short whatever the
/// file holds.
fn quoted(value: &str) -> String {
    crate::domain::bounded(value, 80)
}

/// A row's values, or why this row is invalid.
pub fn check_row<'c>(row: &CsvRow, courses: &'c CourseCatalog) -> Result<ImportRow<'c>, String> {
    let email = Email::parse(&row.email).map_err(|e| format!("bad email: {e}"))?;
    let course = courses
        .by_id_or_name(&row.course)
        .ok_or_else(|| format!("unknown course `{}`", quoted(&row.course)))?;
    let completed_on = NaiveDate::parse_from_str(&row.completion_date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .or_else(|| {
            DateTime::parse_from_rfc3339(&row.completion_date)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
        .ok_or_else(|| {
            format!(
                "bad date `{}`: use YYYY-MM-DD or RFC 3339",
                quoted(&row.completion_date)
            )
        })?;
    if let Some(points) = &row.points {
        if points.parse::<u32>().ok() != Some(course.points) {
            return Err(format!(
                "points `{}` differ from the courses file, which gives {} {} points",
                quoted(points),
                course.name,
                course.points
            ));
        }
    }
    Ok(ImportRow {
        line: row.line,
        email,
        course,
        completed_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn courses() -> CourseCatalog {
        CourseCatalog::from_json(
            r#"{"courses": {"ai": {"name": "AI Foundations for Educators", "points": 20}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn rows_parse_with_quotes_crlf_a_bom_and_blank_lines() {
        let file = "\u{feff}Email,Course,Completion_Date,Points\r\n\
            ada@example.com,ai,2026-11-02,20\r\n\
            \r\n\
            \"grace@example.com\",\"AI Foundations for Educators\",2026-11-03,\n\
            \"x\"\"y@example.com\",\"a, b\nc\",2026-11-04,7";
        let rows = parse_csv(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[1].course, "AI Foundations for Educators");
        assert_eq!(rows[1].points, None);
        assert_eq!(rows[2].email, "x\"y@example.com");
        assert_eq!(rows[2].course, "a, b\nc");
        assert_eq!(rows[2].line, 5);
        let catalog = courses();
        let good = check_row(&rows[0], &catalog).unwrap();
        assert_eq!((good.course.id.as_str(), good.line), ("ai", 2));
        assert_eq!(good.completed_on.to_rfc3339(), "2026-11-02T00:00:00+00:00");
        assert!(
            check_row(&rows[1], &courses()).is_ok(),
            "by name, no points"
        );
        assert!(check_row(&rows[2], &courses()).is_err());
    }

    #[test]
    fn a_big_file_splits_into_pieces_that_parse_back_with_their_lines() {
        let file = "email,course,completion_date\n\
            a@x.io,ai,2026-01-01\n\n\
            \"b@x.io\",\"AI, \"\"Foundations\"\"\nfor all\",2026-01-02\n\
            c@x.io,ai,2026-01-03\n";
        let pieces = split_csv(file.as_bytes(), 2).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].1, vec![2, 4]);
        assert_eq!(pieces[1].1, vec![6]);
        let back = parse_csv(pieces[0].0.as_bytes()).unwrap();
        assert_eq!(back[1].course, "AI, \"Foundations\" for all");
        assert_eq!((back[0].line, back[1].line), (2, 3), "one line per row");
        assert_eq!(
            parse_csv(pieces[1].0.as_bytes()).unwrap()[0].email,
            "c@x.io"
        );
        assert!(split_csv(b"email,course,completion_date\na,b\n", 10).is_err());
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        assert_eq!(parse_csv(b""), Err(CsvError::Empty));
        assert!(matches!(
            parse_csv(b"mail,course,completion_date\n"),
            Err(CsvError::Header(_))
        ));
        assert_eq!(
            parse_csv(b"email,course,completion_date\na@x.io,ai,2026-01-01\nb@x.io,ai\n"),
            Err(CsvError::Columns {
                line: 3,
                found: 2,
                expected: 3
            })
        );
        assert_eq!(
            parse_csv(b"email,course,completion_date\n\"a@x.io,ai,2026-01-01\n"),
            Err(CsvError::Quote(2))
        );
        assert_eq!(
            parse_csv(b"email,course,completion_date\n\xff\n"),
            Err(CsvError::Encoding(2))
        );
        let big = format!(
            "email,course,completion_date\n{}",
            "a@x.io,ai,2026-01-01\n".repeat(MAX_IMPORT_ROWS + 1)
        );
        assert_eq!(
            parse_csv(big.as_bytes()),
            Err(CsvError::TooMany {
                rows: MAX_IMPORT_ROWS + 1
            })
        );
    }

    #[test]
    fn each_bad_value_is_its_own_reason() {
        let row = |email: &str, course: &str, date: &str, points: Option<&str>| CsvRow {
            line: 2,
            email: email.into(),
            course: course.into(),
            completion_date: date.into(),
            points: points.map(str::to_string),
        };
        let reason = |r: CsvRow| check_row(&r, &courses()).unwrap_err();
        assert!(reason(row("nope", "ai", "2026-01-01", None)).starts_with("bad email"));
        assert!(reason(row("a@x.io", "art", "2026-01-01", None)).starts_with("unknown course"));
        assert!(reason(row("a@x.io", "ai", "01/02/2026", None)).starts_with("bad date"));
        assert!(reason(row("a@x.io", "ai", "2026-01-01", Some("25"))).contains("gives"));
        assert!(check_row(
            &row("a@x.io", "ai", "2026-01-01T10:00:00Z", Some("20")),
            &courses()
        )
        .is_ok());
    }
}
