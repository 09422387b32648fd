//! The demo's knowledge base: entries written up by the service desk and L2 engineers and
//! reviewed by the expert group, each step a decision of `decide_entry`, so every published
//! entry passed four eyes. The text varies over systems, modules, symptoms, error codes and
//! versions, in Chinese with English terms as engineers write them, so that search and
//! suggestions meet the spread of words a real knowledge base has.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DemoError, SYSTEMS, WARDS, pick};
use crate::domain::knowledge::{KnowledgeCommand, KnowledgeEntry, KnowledgeText, decide_entry};
use crate::domain::taxonomy::Taxonomy;
use crate::domain::workflow::Caller;

const MODULES: &[&str] = &[
    "门诊挂号",
    "门诊收费",
    "住院登记",
    "住院结算",
    "药房发药",
    "药库入库",
    "医生工作站",
    "护士工作站",
    "检验报告",
    "标本采集",
    "影像调阅",
    "报告打印",
    "医保结算",
    "电子票据",
    "病历书写",
    "体检登记",
    "日结对账",
    "数据上传",
    "排班管理",
    "接口服务",
];

/// Symptoms: the Chinese phrase and how an English-writing engineer says it.
const SYMPTOMS: &[(&str, &str)] = &[
    ("保存时报错", "error on save"),
    ("打印空白", "blank printout"),
    ("查询超时", "query timeout"),
    ("上下数据不一致", "data mismatch after upload"),
    ("登录失败", "login failure"),
    ("界面卡死", "screen freezes"),
    ("金额计算错误", "wrong amount calculated"),
    ("上传失败", "upload failed"),
    ("结果不显示", "results not shown"),
    ("升级后报错", "error after upgrade"),
    ("重复收费", "duplicate charge"),
    ("无法连接数据库", "cannot connect to database"),
    ("证书过期", "certificate expired"),
    ("图像无法加载", "images do not load"),
    ("条码无法识别", "barcode not recognised"),
    ("医保返回失败", "insurance gateway rejects request"),
    ("报表数据为空", "empty report"),
    ("字典项缺失", "missing dictionary entries"),
    ("并发锁表", "table locked by concurrent session"),
    ("服务自动停止", "service stops by itself"),
];

const ERROR_CODES: &[&str] = &[
    "ORA-00942",
    "ORA-01555",
    "ORA-12541",
    "ORA-00054",
    "ORA-01017",
    "ORA-04031",
    "HTTP 500",
    "HTTP 502",
    "SocketTimeoutException",
    "NullPointerException",
    "deadlock detected",
    "connection refused",
    "SSL handshake failed",
    "disk full",
];

const CAUSES: &[&str] = &[
    "升级包中的数据库脚本未执行完整，缺少新建的表和视图",
    "客户端版本与服务器版本不一致",
    "数据库表空间不足，回滚段被覆盖",
    "打印机驱动与操作系统不兼容",
    "医保接口参数配置错误",
    "网络中断导致上传任务只完成一半",
    "字典数据未同步到分院",
    "长事务未提交，锁住了收费明细表",
    "证书到期未续签",
    "应用服务器内存不足，服务被系统终止",
    "用户未按操作流程先结账后打印",
    "新来人员不熟悉功能，误删了配置",
];

const SOLUTIONS: &[&str] = &[
    "重新执行升级包中的数据库脚本，再重启应用服务",
    "卸载旧客户端，按发布版本重新安装",
    "扩展表空间并调整回滚段参数，重新执行查询",
    "安装厂商提供的新版打印机驱动，重启打印服务",
    "核对医保接口参数并按文档修改，重新结算",
    "在数据上传模块中选择失败批次重新上传，并核对上下数据",
    "从总院重新同步字典数据，刷新客户端缓存",
    "找到长时间未提交的会话并结束，提醒用户规范操作",
    "续签证书并在服务器上替换，重启接口服务",
    "调大应用服务器内存并设置服务自动重启",
    "远程指导用户按正确流程操作，并发送操作手册",
    "恢复配置备份，对新来人员进行培训",
];

/// Generates knowledge entries, written between `start` and `end` by `authors` and reviewed by
/// `experts`, citing incidents `first_incident..first_incident + incidents` as their source.
pub struct KnowledgeGenerator<'a> {
    rng: StdRng,
    taxonomy: &'a Taxonomy,
    authors: Vec<Caller>,
    experts: Vec<Caller>,
    subcategories: Vec<String>,
    first_incident: i64,
    incidents: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl<'a> KnowledgeGenerator<'a> {
    /// A generator seeded with `seed`; `experts` must hold at least two people so that an
    /// expert's own entry finds a reviewer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seed: u64,
        taxonomy: &'a Taxonomy,
        authors: Vec<Caller>,
        experts: Vec<Caller>,
        (first_incident, incidents): (i64, u64),
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Self {
        let subcategories = taxonomy
            .categories
            .iter()
            .flat_map(|c| c.subcategories.iter().map(|s| s.code.clone()))
            .collect();
        KnowledgeGenerator {
            rng: StdRng::seed_from_u64(seed ^ 0x4B4E_4F57),
            taxonomy,
            authors,
            experts,
            subcategories,
            first_incident,
            incidents,
            start,
            end,
        }
    }

    fn text(&mut self) -> KnowledgeText {
        let subcategory = pick(&mut self.rng, &self.subcategories);
        let classified_as = self
            .taxonomy
            .categories
            .iter()
            .flat_map(|c| &c.subcategories)
            .find(|s| s.code == subcategory)
            .map_or(String::new(), |s| format!("{}：", s.name_zh));
        let system = pick(&mut self.rng, SYSTEMS);
        let module = pick(&mut self.rng, MODULES);
        let (symptom, symptom_en) = pick(&mut self.rng, SYMPTOMS);
        let code = self
            .rng
            .random_bool(0.6)
            .then(|| pick(&mut self.rng, ERROR_CODES));
        let version = format!(
            "{}.{}.{}",
            self.rng.random_range(3..=6),
            self.rng.random_range(0..10),
            self.rng.random_range(0..30)
        );
        let ward = pick(&mut self.rng, WARDS);
        let title = match (code, self.rng.random_range(0..10)) {
            (_, 0..2) => format!("{system} {module}: {symptom_en}"),
            (Some(code), _) => format!("{system}{module}{symptom}（{code}）"),
            (None, _) => format!("{system}{module}{symptom}"),
        };
        let symptom_text = format!(
            "{classified_as}{ward}在{system} {version} 的{module}中{symptom}{}。{}",
            code.map(|c| format!("，提示 {c}")).unwrap_or_default(),
            if self.rng.random_bool(0.3) {
                format!("English log: {symptom_en}.")
            } else {
                String::new()
            }
        );
        let cause = self
            .rng
            .random_bool(0.8)
            .then(|| pick(&mut self.rng, CAUSES).to_owned());
        let solution = format!("{}。适用版本 {version}。", pick(&mut self.rng, SOLUTIONS));
        let mut tags = vec![system.to_owned(), module.to_owned()];
        tags.extend(code.map(str::to_owned));
        KnowledgeText {
            title,
            symptom: symptom_text,
            cause,
            solution,
            category: None,
            subcategory: Some(subcategory),
            tags,
        }
    }

    /// Entry `id` as its review left it: most are published, some retired later, some wait
    /// for review, some are drafts, some were rejected back to their author. Steps that would
    /// fall after the end of the history are not taken.
    pub fn entry(&mut self, id: i64) -> Result<KnowledgeEntry, DemoError> {
        let fail = |step: &'static str| {
            move |error: crate::domain::knowledge::KnowledgeError| DemoError {
                what: "knowledge entry",
                id,
                step,
                error: error.into(),
            }
        };
        let text = self.text().check(self.taxonomy).map_err(|fields| {
            fail("write")(crate::domain::knowledge::KnowledgeError::Invalid(fields))
        })?;
        let author = pick(&mut self.rng, &self.authors);
        let author_id = author.id.unwrap_or_default();
        let span = (self.end - self.start).num_seconds().max(1);
        let mut now = self.start + Duration::seconds(self.rng.random_range(0..span));
        let source = self
            .rng
            .random_bool(0.7)
            .then(|| self.first_incident + self.rng.random_range(0..self.incidents.max(1)) as i64);
        let mut entry = KnowledgeEntry::draft(id, author_id, text, source, now);
        let roll = self.rng.random_range(0..100);
        let mut steps: Vec<(Caller, KnowledgeCommand)> = Vec::new();
        if roll >= 5 {
            steps.push((author.clone(), KnowledgeCommand::Submit));
        }
        let reviewer = loop {
            let expert = pick(&mut self.rng, &self.experts);
            if expert.id != author.id {
                break expert;
            }
        };
        match roll {
            0..5 => {}
            5..10 => {}
            10..15 => steps.push((
                reviewer,
                KnowledgeCommand::Reject {
                    reason: "请补充原因分析和适用版本".into(),
                },
            )),
            15..20 => {
                steps.push((reviewer.clone(), KnowledgeCommand::Approve));
                steps.push((reviewer, KnowledgeCommand::Retire));
            }
            _ => steps.push((reviewer, KnowledgeCommand::Approve)),
        }
        for (caller, command) in steps {
            now += Duration::minutes(self.rng.random_range(30..72 * 60));
            if now >= self.end {
                break;
            }
            let step = match command {
                KnowledgeCommand::Submit => "submit",
                KnowledgeCommand::Approve => "approve",
                KnowledgeCommand::Reject { .. } => "reject",
                KnowledgeCommand::Retire => "retire",
                KnowledgeCommand::Edit(_) => "edit",
            };
            entry = decide_entry(
                &entry,
                caller.id.unwrap_or_default(),
                &caller.roles,
                command,
                self.taxonomy,
                now,
            )
            .map_err(fail(step))?;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::caller;
    use crate::domain::knowledge::KnowledgeStatus;
    use crate::domain::role::Role;
    use crate::domain::taxonomy::tests_support::small_taxonomy;

    #[test]
    fn entries_pass_review_by_someone_else_and_vary() {
        let taxonomy = small_taxonomy();
        let end = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let authors = vec![
            caller(1, "desk", Role::ServiceDesk),
            caller(2, "l2a", Role::L2Engineer),
        ];
        let experts = vec![
            caller(2, "l2a", Role::L2Engineer),
            caller(3, "l2b", Role::L2Engineer),
        ];
        let mut generator = KnowledgeGenerator::new(
            7,
            &taxonomy,
            authors,
            experts,
            (100, 50),
            end - Duration::days(365),
            end,
        );
        let entries: Vec<KnowledgeEntry> =
            (1..=400).map(|id| generator.entry(id).unwrap()).collect();
        let published = entries
            .iter()
            .filter(|e| e.status == KnowledgeStatus::Published)
            .count();
        assert!((250..380).contains(&published), "{published} published");
        for status in [
            KnowledgeStatus::Draft,
            KnowledgeStatus::Submitted,
            KnowledgeStatus::Retired,
        ] {
            assert!(entries.iter().any(|e| e.status == status), "{status:?}");
        }
        assert!(entries.iter().any(|e| e.reject_reason.is_some()));
        for entry in &entries {
            if let Some(reviewer) = entry.reviewed_by {
                assert_ne!(reviewer, entry.author_id);
            }
            assert!(entry.updated_at < end);
            assert!(
                entry
                    .source_incident_id
                    .is_none_or(|id| (100..150).contains(&id))
            );
        }
        let titles: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.title.as_str()).collect();
        assert!(titles.len() > 350, "{} distinct titles", titles.len());
        assert!(entries.iter().any(|e| e.title.contains("ORA-")));
        assert!(entries.iter().any(|e| e.title.contains("error")));
    }
}
