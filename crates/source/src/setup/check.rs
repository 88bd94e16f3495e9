//! One verdict of setup: in place, to be created, or refused.

use super::problem::Problem;

/// One thing setup checked on the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `wal_level` or `publication walproof`.
    pub subject: String,
    /// What setup found.
    pub verdict: Verdict,
}

/// What setup found for a [`Check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// In place; says what was found.
    Ok(String),
    /// Missing; setup creates it by running `statement`.
    Create {
        /// What will be created.
        detail: String,
        /// The SQL that creates it.
        statement: String,
    },
    /// The user must fix this first.
    Refused(Problem),
}

impl Check {
    pub(crate) fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Ok(detail.into()),
        }
    }

    pub(crate) fn create(
        subject: impl Into<String>,
        detail: impl Into<String>,
        statement: String,
    ) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Create {
                detail: detail.into(),
                statement,
            },
        }
    }

    pub(crate) fn refused(subject: impl Into<String>, problem: Problem) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Refused(problem),
        }
    }

    /// The problem, when refused.
    pub fn problem(&self) -> Option<&Problem> {
        match &self.verdict {
            Verdict::Refused(problem) => Some(problem),
            Verdict::Ok(_) | Verdict::Create { .. } => None,
        }
    }
}
