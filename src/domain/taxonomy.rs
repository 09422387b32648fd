//! The incident taxonomy of SPEC §3: categories with subcategories, causes with sub-causes.

use serde::Serialize;
use utoipa::ToSchema;

use super::validation::FieldError;

use super::level::Level;

/// The cause codes SPEC §3 fixes (产生原因), as the reference data holds them; the server checks
/// a resolution against the loaded taxonomy, and a test checks that the two lists agree.
pub const CAUSE_CODES: [&str; 9] = [
    "system_defect",
    "misuse",
    "upgrade_unaware",
    "new_requirement",
    "unfamiliar",
    "unknown",
    "site_environment",
    "hardware",
    "database",
];

/// The sub-cause codes SPEC §3 fixes, as the reference data holds them.
pub const SUBCAUSE_CODES: [&str; 14] = [
    "error_on_normal_use",
    "module_unusable",
    "multi_site_bug",
    "frontend_operation_error",
    "wrong_procedure",
    "no_upgrade_notice",
    "wrong_upgrade_version",
    "new_feature",
    "feature_unknown",
    "no_handover",
    "unclear_direct_fix",
    "site_hardware_network",
    "equipment_failure",
    "database_fault",
];

/// 事件类别 with its subcategories (适用条件).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Category {
    /// Stable code.
    #[schema(example = "upgrade_issue")]
    pub code: String,
    /// Chinese name.
    #[schema(example = "升级时出现问题")]
    pub name_zh: String,
    /// English name.
    #[schema(example = "Problem during upgrade")]
    pub name_en: String,
    /// Subcategories, in the procedure's order.
    pub subcategories: Vec<Subcategory>,
}

/// A subcategory and the level an incident of it gets by default.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Subcategory {
    /// Stable code.
    #[schema(example = "upgrade_error")]
    pub code: String,
    /// Chinese name.
    #[schema(example = "升级出错")]
    pub name_zh: String,
    /// English name.
    #[schema(example = "Upgrade error")]
    pub name_en: String,
    /// Level given to a new incident of this subcategory when none is given.
    pub default_level: Level,
}

/// 产生原因 with its sub-causes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Cause {
    /// Stable code.
    #[schema(example = "system_defect")]
    pub code: String,
    /// Chinese name.
    #[schema(example = "系统问题")]
    pub name_zh: String,
    /// English name.
    #[schema(example = "System defect")]
    pub name_en: String,
    /// Sub-causes, in the procedure's order.
    pub subcauses: Vec<Subcause>,
}

/// A sub-cause.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Subcause {
    /// Stable code.
    #[schema(example = "module_unusable")]
    pub code: String,
    /// Chinese name.
    #[schema(example = "某个模块功能不能使用")]
    pub name_zh: String,
    /// English name.
    #[schema(example = "A module does not work")]
    pub name_en: String,
}

/// The whole taxonomy; it changes only with a migration, so it is loaded once at start-up.
#[derive(Debug, Clone, PartialEq, Default, Serialize, ToSchema)]
pub struct Taxonomy {
    /// Incident categories.
    pub categories: Vec<Category>,
    /// Causes recorded when an incident is resolved.
    pub causes: Vec<Cause>,
}

impl Taxonomy {
    /// The subcategory `subcategory` when it belongs to `category`.
    pub fn subcategory(&self, category: &str, subcategory: &str) -> Option<&Subcategory> {
        self.categories
            .iter()
            .find(|c| c.code == category)?
            .subcategories
            .iter()
            .find(|s| s.code == subcategory)
    }

    /// True when `category` is a known category code.
    pub fn has_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c.code == category)
    }

    /// The sub-cause `subcause` when it belongs to `cause`.
    pub fn subcause(&self, cause: &str, subcause: &str) -> Option<&Subcause> {
        self.causes
            .iter()
            .find(|c| c.code == cause)?
            .subcauses
            .iter()
            .find(|s| s.code == subcause)
    }

    /// True when `cause` is a known cause code.
    pub fn has_cause(&self, cause: &str) -> bool {
        self.causes.iter().any(|c| c.code == cause)
    }

    /// The category of `subcategory`, for requests that name only the subcategory.
    pub fn category_of(&self, subcategory: &str) -> Option<String> {
        self.categories
            .iter()
            .find(|c| c.subcategories.iter().any(|s| s.code == subcategory))
            .map(|c| c.code.clone())
    }

    /// Checks a classification: a subcategory needs its category, and both must be known.
    pub fn check_classification(
        &self,
        category: Option<&str>,
        subcategory: Option<&str>,
    ) -> Result<(), FieldError> {
        let unknown_category = |category: &str| {
            FieldError::new(
                "category",
                "unknown",
                format!("`{category}` is not a category; see GET /api/v1/taxonomy"),
            )
        };
        match (category, subcategory) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(FieldError::new(
                "category",
                "required",
                "a subcategory needs its category",
            )),
            (Some(category), _) if !self.has_category(category) => Err(unknown_category(category)),
            (Some(_), None) => Ok(()),
            (Some(category), Some(subcategory)) => {
                if self.subcategory(category, subcategory).is_none() {
                    return Err(FieldError::new(
                        "subcategory",
                        "unknown",
                        format!("`{subcategory}` is not a subcategory of `{category}`"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Checks a cause and sub-cause recorded with a resolution.
    pub fn check_cause(&self, cause: &str, subcause: &str) -> Result<(), FieldError> {
        if !self.has_cause(cause) {
            return Err(FieldError::new(
                "cause",
                "unknown",
                format!("`{cause}` is not a cause"),
            ));
        }
        if self.subcause(cause, subcause).is_none() {
            return Err(FieldError::new(
                "subcause",
                "unknown",
                format!("`{subcause}` is not a sub-cause of `{cause}`"),
            ));
        }
        Ok(())
    }
}

/// A one-category, one-cause taxonomy for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// `upgrade_issue`/`unusable_after_upgrade` and `hardware`/`equipment_failure`, each named by
    /// its code in capitals.
    pub(crate) fn small_taxonomy() -> Taxonomy {
        let named = |code: &str| (code.to_owned(), code.to_uppercase(), code.to_owned());
        let (code, name_zh, name_en) = named("upgrade_issue");
        let (sub, sub_zh, sub_en) = named("unusable_after_upgrade");
        let (cause, cause_zh, cause_en) = named("hardware");
        let (subcause, subcause_zh, subcause_en) = named("equipment_failure");
        Taxonomy {
            categories: vec![Category {
                code,
                name_zh,
                name_en,
                subcategories: vec![Subcategory {
                    code: sub,
                    name_zh: sub_zh,
                    name_en: sub_en,
                    default_level: Level::High,
                }],
            }],
            causes: vec![Cause {
                code: cause,
                name_zh: cause_zh,
                name_en: cause_en,
                subcauses: vec![Subcause {
                    code: subcause,
                    name_zh: subcause_zh,
                    name_en: subcause_en,
                }],
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::small_taxonomy as sample;
    use super::*;

    #[test]
    fn subcategories_are_found_only_under_their_category() {
        let taxonomy = sample();
        let found = taxonomy.subcategory("upgrade_issue", "unusable_after_upgrade");
        assert_eq!(found.map(|s| s.default_level), Some(Level::High));
        assert!(
            taxonomy
                .subcategory("usage_issue", "unusable_after_upgrade")
                .is_none()
        );
        assert!(taxonomy.has_category("upgrade_issue"));
        assert!(!taxonomy.has_category("nope"));
    }

    #[test]
    fn subcauses_are_found_only_under_their_cause() {
        let taxonomy = sample();
        assert!(taxonomy.subcause("hardware", "equipment_failure").is_some());
        assert!(taxonomy.subcause("database", "equipment_failure").is_none());
        assert!(taxonomy.has_cause("hardware"));
    }
}
