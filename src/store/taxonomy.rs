//! Loads the seeded taxonomy.

use diesel::prelude::*;

use super::StoreError;
use super::schema::{categories, causes, subcategories, subcauses};
use crate::domain::level::Level;
use crate::domain::taxonomy::{Category, Cause, Subcategory, Subcause, Taxonomy};

/// Reads categories, subcategories, causes and sub-causes in the procedure's order.
pub fn load(conn: &mut PgConnection) -> Result<Taxonomy, StoreError> {
    let category_rows: Vec<(String, String, String)> = categories::table
        .order(categories::position)
        .select((categories::code, categories::name_zh, categories::name_en))
        .load(conn)?;
    let subcategory_rows: Vec<(String, String, String, String, String)> = subcategories::table
        .order(subcategories::position)
        .select((
            subcategories::category_code,
            subcategories::code,
            subcategories::name_zh,
            subcategories::name_en,
            subcategories::default_level,
        ))
        .load(conn)?;
    let cause_rows: Vec<(String, String, String)> = causes::table
        .order(causes::position)
        .select((causes::code, causes::name_zh, causes::name_en))
        .load(conn)?;
    let subcause_rows: Vec<(String, String, String, String)> = subcauses::table
        .order(subcauses::position)
        .select((
            subcauses::cause_code,
            subcauses::code,
            subcauses::name_zh,
            subcauses::name_en,
        ))
        .load(conn)?;

    let mut categories = Vec::with_capacity(category_rows.len());
    for (code, name_zh, name_en) in category_rows {
        let mut subcategories = Vec::new();
        for (parent, sub, sub_zh, sub_en, level) in &subcategory_rows {
            if *parent == code {
                subcategories.push(Subcategory {
                    code: sub.clone(),
                    name_zh: sub_zh.clone(),
                    name_en: sub_en.clone(),
                    default_level: level.parse::<Level>().map_err(StoreError::internal)?,
                });
            }
        }
        categories.push(Category {
            code,
            name_zh,
            name_en,
            subcategories,
        });
    }
    let causes = cause_rows
        .into_iter()
        .map(|(code, name_zh, name_en)| Cause {
            subcauses: subcause_rows
                .iter()
                .filter(|(parent, ..)| *parent == code)
                .map(|(_, sub, sub_zh, sub_en)| Subcause {
                    code: sub.clone(),
                    name_zh: sub_zh.clone(),
                    name_en: sub_en.clone(),
                })
                .collect(),
            code,
            name_zh,
            name_en,
        })
        .collect();
    Ok(Taxonomy { categories, causes })
}
