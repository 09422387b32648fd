-- Reference data of SPEC §3 (procedure §4.8.1, §4.9). Codes are stable: clients store them.

CREATE TABLE categories (
    code      TEXT PRIMARY KEY,
    name_zh   TEXT NOT NULL,
    name_en   TEXT NOT NULL,
    position  INTEGER NOT NULL UNIQUE
);

CREATE TABLE subcategories (
    code           TEXT PRIMARY KEY,
    category_code  TEXT NOT NULL REFERENCES categories (code),
    name_zh        TEXT NOT NULL,
    name_en        TEXT NOT NULL,
    default_level  TEXT NOT NULL CHECK (default_level IN ('low', 'medium', 'high')),
    position       INTEGER NOT NULL UNIQUE
);

CREATE TABLE causes (
    code      TEXT PRIMARY KEY,
    name_zh   TEXT NOT NULL,
    name_en   TEXT NOT NULL,
    position  INTEGER NOT NULL UNIQUE
);

CREATE TABLE subcauses (
    code        TEXT PRIMARY KEY,
    cause_code  TEXT NOT NULL REFERENCES causes (code),
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    position    INTEGER NOT NULL UNIQUE
);

-- Resolution targets per level (procedure §4.8.1: 8 h / 4 h / 2 h); admins may change them.
CREATE TABLE sla_policies (
    level               TEXT PRIMARY KEY CHECK (level IN ('low', 'medium', 'high')),
    resolution_minutes  INTEGER NOT NULL CHECK (resolution_minutes BETWEEN 1 AND 525600),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by          BIGINT REFERENCES users (id),
    version             INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
);

INSERT INTO sla_policies (level, resolution_minutes) VALUES
    ('high', 120), ('medium', 240), ('low', 480);

INSERT INTO categories (code, name_zh, name_en, position) VALUES
    ('upgrade_issue',   '升级时出现问题',     'Problem during upgrade',              1),
    ('usage_issue',     '使用时出现问题',     'Problem during use',                  2),
    ('business_data',   '处理业务数据',       'Business data handling',              3),
    ('consultation',    '咨询业务和使用信息', 'Business and usage consultation',     4),
    ('new_requirement', '新需求',             'New requirement',                     5),
    ('business_call',   '业务沟通电话',       'Business communication call',         6),
    ('redeployment',    '重新部署安装系统',   'System redeployment and reinstallation', 7),
    ('onsite_service',  '现场服务',           'On-site service',                     8),
    ('training',        '培训服务',           'Training service',                    9),
    ('purchase',        '用户购买需求',       'Customer purchase request',           10);

INSERT INTO subcategories (code, category_code, name_zh, name_en, default_level, position) VALUES
    ('upgrade_error',                'upgrade_issue',   '升级出错',                         'Upgrade error',                                 'medium', 1),
    ('unusable_after_upgrade',       'upgrade_issue',   '升级后程序无法正常使用',           'Program unusable after upgrade',                'high',   2),
    ('data_wrong_after_upgrade',     'upgrade_issue',   '升级后数据丢失、显示不正确',       'Data lost or shown incorrectly after upgrade',  'medium', 3),
    ('issue_persists_after_upgrade', 'upgrade_issue',   '升级后原有问题依然存在',           'Original problem persists after upgrade',       'medium', 4),
    ('module_input_blocked',         'usage_issue',     '操作到某个模块无法录入',           'Cannot enter data in a module',                 'high',   5),
    ('query_inaccurate',             'usage_issue',     '查询数据不准确',                   'Query results inaccurate',                      'medium', 6),
    ('upload_inconsistent',          'usage_issue',     '上传后上下数据不一致',             'Data inconsistent after upload',                'high',   7),
    ('data_resubmit',                'business_data',   '业务数据需要补传',                 'Business data must be re-uploaded',             'high',   8),
    ('uploaded_data_change',         'business_data',   '已上传的业务数据需要查询和修改',   'Uploaded business data needs lookup or change', 'medium', 9),
    ('usage_howto',                  'consultation',    '咨询系统使用',                     'How to use the system',                         'low',    10),
    ('upgrade_package',              'consultation',    '咨询升级包存放地址及升级操作',     'Upgrade package location and procedure',        'low',    11),
    ('fax_number',                   'consultation',    '咨询传真号码',                     'Fax number enquiry',                            'low',    12),
    ('hardware_repair_info',         'consultation',    '咨询系统涉及到的硬件修理信息',     'Hardware repair information',                   'low',    13),
    ('new_feature',                  'new_requirement', '程序增加新功能',                   'New program feature',                           'low',    14),
    ('new_code',                     'new_requirement', '增加编码',                         'New code values',                               'low',    15),
    ('contact_staff',                'business_call',   '直接找公司人员',                   'Call for a company employee',                   'low',    16),
    ('repeat_call',                  'business_call',   '同一故障多次来电',                 'Repeated calls about one fault',                'low',    17),
    ('busy_pickup',                  'business_call',   '遇忙代接',                         'Call picked up for a busy colleague',           'low',    18),
    ('remote_reinstall',             'redeployment',    '电话指导、远程重新安装系统环境',   'Guided or remote reinstallation',               'medium', 19),
    ('onsite_deploy',                'onsite_service',  '现场部署、修改系统环境',           'On-site deployment or environment change',      'medium', 20),
    ('internal_training',            'training',        '对公司内部培训',                   'Internal staff training',                       'low',    21),
    ('onsite_user_training',         'training',        '对现场使用人员培训',               'On-site user training',                         'low',    22),
    ('new_system',                   'purchase',        '新系统的购买需求',                 'Purchase of a new system',                      'low',    23),
    ('equipment_upgrade',            'purchase',        '对原有设备和系统的购买需求',       'Purchase for existing equipment and systems',   'low',    24);

INSERT INTO causes (code, name_zh, name_en, position) VALUES
    ('system_defect',    '系统问题',       'System defect',          1),
    ('misuse',           '用户使用不当',   'Improper use',           2),
    ('upgrade_unaware',  '不了解升级信息', 'Unaware of upgrade',     3),
    ('new_requirement',  '新需求',         'New requirement',        4),
    ('unfamiliar',       '不会使用',       'Unfamiliar with system', 5),
    ('unknown',          '不明原因',       'Unknown cause',          6),
    ('site_environment', '现场环境问题',   'Site environment',       7),
    ('hardware',         '硬件问题',       'Hardware',               8),
    ('database',         '数据库问题',     'Database',               9);

INSERT INTO subcauses (code, cause_code, name_zh, name_en, position) VALUES
    ('error_on_normal_use',      'system_defect',    '正常操作系统报错',           'Error during normal operation',           1),
    ('module_unusable',          'system_defect',    '某个模块功能不能使用',       'A module does not work',                  2),
    ('multi_site_bug',           'system_defect',    '同一个问题三个以上单位出现', 'Same problem at three or more customers', 3),
    ('frontend_operation_error', 'misuse',           '前台操作错误',               'Front-end operating error',               4),
    ('wrong_procedure',          'misuse',           '不按正常流程操作',           'Normal procedure not followed',           5),
    ('no_upgrade_notice',        'upgrade_unaware',  '没有接收到升级通知',         'Upgrade notice not received',             6),
    ('wrong_upgrade_version',    'upgrade_unaware',  '未按发布版本升级',           'Not upgraded to the released version',    7),
    ('new_feature',              'new_requirement',  '程序增加新功能',             'New program feature',                     8),
    ('feature_unknown',          'unfamiliar',       '不了解系统功能',             'System function not known',               9),
    ('no_handover',              'unfamiliar',       '新来人员没有交接',           'New staff without handover',              10),
    ('unclear_direct_fix',       'unknown',          '原因不明确，直接处理得到结果', 'Cause unclear, fixed directly',          11),
    ('site_hardware_network',    'site_environment', '现场的硬件、网络等条件',     'On-site hardware or network conditions',  12),
    ('equipment_failure',        'hardware',         '配套硬件设备或计算机故障',   'Supporting equipment or computer failure', 13),
    ('database_fault',           'database',         '数据库 (Oracle 等) 出现的问题', 'Database (Oracle etc.) problem',      14);
