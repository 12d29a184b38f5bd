//! Courses whose completion earns points, from `infra/courses.json`.
//!
//! Kajabi has no completion hook: a course ends with a form, and its
//! submission is the completion. A submission completes a course when its
//! form is one of the course's forms (the v1 hooks carry the form's id, never
//! a course), or when its `course_name` field names the course (the seed's
//! dialect). Anything else is not a completion.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// Points a course awards when its file does not say.
pub const DEFAULT_COURSE_POINTS: u32 = 20;

/// A course in the catalog; only [`CourseCatalog`] hands these out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: String,
    pub name: String,
    pub points: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourseError {
    #[error("courses file is not valid JSON: {0}")]
    Json(String),
    #[error("course {0}: points must be at least 1")]
    NoPoints(String),
    #[error("course {0}: an id is letters, digits, `_` and `-`")]
    BadId(String),
    #[error("form {form} completes both {first} and {second}")]
    SharedForm {
        form: String,
        first: String,
        second: String,
    },
    #[error("the course name `{name}` names both {first} and {second}")]
    SharedName {
        name: String,
        first: String,
        second: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoursesFile {
    courses: BTreeMap<String, CourseSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseSpec {
    name: String,
    #[serde(default)]
    points: Option<u32>,
    /// Kajabi form ids whose submissions complete the course.
    #[serde(default)]
    forms: Vec<String>,
    /// Other values of the submission's `course_name` field that name it
    /// (its `name` always does).
    #[serde(default)]
    course_names: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CourseCatalog {
    courses: Vec<Course>,
    by_form: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

/// Course names compare without case and with runs of whitespace as one space.
fn normalized(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl CourseCatalog {
    pub fn from_json(raw: &str) -> Result<Self, CourseError> {
        let file: CoursesFile =
            serde_json::from_str(raw).map_err(|e| CourseError::Json(e.to_string()))?;
        let mut catalog = Self::default();
        for (id, spec) in file.courses {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(CourseError::BadId(id));
            }
            let points = spec.points.unwrap_or(DEFAULT_COURSE_POINTS);
            if points == 0 {
                return Err(CourseError::NoPoints(id));
            }
            let index = catalog.courses.len();
            for form in spec.forms {
                let form = form.trim().to_string();
                if let Some(&other) = catalog.by_form.get(&form) {
                    return Err(CourseError::SharedForm {
                        form,
                        first: catalog.courses[other].id.clone(),
                        second: id,
                    });
                }
                catalog.by_form.insert(form, index);
            }
            for name in std::iter::once(&spec.name).chain(&spec.course_names) {
                let name = normalized(name);
                match catalog.by_name.get(&name) {
                    Some(&other) if other != index => {
                        return Err(CourseError::SharedName {
                            name,
                            first: catalog.courses[other].id.clone(),
                            second: id,
                        })
                    }
                    _ => {
                        catalog.by_name.insert(name, index);
                    }
                }
            }
            catalog.courses.push(Course {
                id,
                name: spec.name,
                points,
            });
        }
        Ok(catalog)
    }

    /// The course a form submission completes: by its form first, else by
    /// the course its `course_name` field names. Exact matches only: a wrong
    /// course would award the wrong points.
    pub fn for_submission(
        &self,
        form_id: Option<&str>,
        course_name: Option<&str>,
    ) -> Option<&Course> {
        form_id
            .and_then(|form| self.by_form.get(form.trim()))
            .or_else(|| course_name.and_then(|name| self.by_name.get(&normalized(name))))
            .map(|&i| &self.courses[i])
    }

    pub fn get(&self, course_id: &str) -> Option<&Course> {
        self.courses.iter().find(|c| c.id == course_id)
    }

    /// By id or by any name it goes by (a CSV import names courses either way).
    pub fn by_id_or_name(&self, text: &str) -> Option<&Course> {
        self.get(text.trim())
            .or_else(|| self.for_submission(None, Some(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"courses": {
        "ai_foundations": {"name": "AI Foundations for Educators", "points": 20},
        "data_literacy": {"name": "Data Literacy", "points": 35, "forms": ["2150", " 2151 "],
            "course_names": ["Data Literacy 101"]},
        "ethics": {"name": "AI Ethics"}
    }}"#;

    #[test]
    fn a_submission_matches_by_form_then_by_course_name() {
        let catalog = CourseCatalog::from_json(FILE).unwrap();
        let by_form = catalog.for_submission(Some("2151"), None).unwrap();
        assert_eq!((by_form.id.as_str(), by_form.points), ("data_literacy", 35));
        // The form wins over a course-name field naming another course.
        let both = catalog
            .for_submission(Some("2150"), Some("AI Foundations for Educators"))
            .unwrap();
        assert_eq!(both.id, "data_literacy");
        let by_name = catalog
            .for_submission(Some("999"), Some("  ai   foundations FOR educators "))
            .unwrap();
        assert_eq!(by_name.id, "ai_foundations");
        assert_eq!(
            catalog
                .for_submission(None, Some("Data Literacy 101"))
                .unwrap()
                .id,
            "data_literacy"
        );
        assert_eq!(catalog.get("ethics").unwrap().points, DEFAULT_COURSE_POINTS);
    }

    #[test]
    fn nothing_close_is_a_match() {
        let catalog = CourseCatalog::from_json(FILE).unwrap();
        for (form, name) in [
            (None, Some("AI Foundations")),
            (None, Some("AI Foundations for Educators 2")),
            (Some("21"), None),
            (None, None),
        ] {
            assert_eq!(
                catalog.for_submission(form, name),
                None,
                "{form:?} {name:?}"
            );
        }
    }

    #[test]
    fn a_file_that_could_award_the_wrong_course_is_refused() {
        let shared_form = r#"{"courses": {"a": {"name": "A", "forms": ["1"]}, "b": {"name": "B", "forms": ["1"]}}}"#;
        assert!(matches!(
            CourseCatalog::from_json(shared_form),
            Err(CourseError::SharedForm { .. })
        ));
        let shared_name =
            r#"{"courses": {"a": {"name": "A"}, "b": {"name": "B", "course_names": ["a"]}}}"#;
        assert!(matches!(
            CourseCatalog::from_json(shared_name),
            Err(CourseError::SharedName { .. })
        ));
        let zero = r#"{"courses": {"a": {"name": "A", "points": 0}}}"#;
        assert_eq!(
            CourseCatalog::from_json(zero).unwrap_err(),
            CourseError::NoPoints("a".into())
        );
        let bad_id = r#"{"courses": {"a b": {"name": "A"}}}"#;
        assert!(matches!(
            CourseCatalog::from_json(bad_id),
            Err(CourseError::BadId(_))
        ));
        let typo = r#"{"courses": {"a": {"name": "A", "point": 5}}}"#;
        assert!(matches!(
            CourseCatalog::from_json(typo),
            Err(CourseError::Json(_))
        ));
    }
}
