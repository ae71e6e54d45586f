"""Names and places of the demo city (滁州市): constant tuples only, no I/O."""

from __future__ import annotations

from typing import NamedTuple

ACTOR = "demo"  # who the audit trail says made the demo city
CITY_CODE = "cz"
CITY_NAME = "滁州市"
CITY_ADMIN_CODE = "341100"
TIMEZONE = "Asia/Shanghai"
TOTAL_MEMBERS = 3000
BRANCHES_PER_COMMITTEE = 3
CARD_SHARE = 0.92


class CommitteeSpec(NamedTuple):
    """A 基层党(工)委: its code suffix, name, kind, and named branches or villages."""

    suffix: str
    name: str
    kind: str  # "town", "street", "organ" or "enterprise"
    names: tuple[str, ...] = ()  # branch names (organ/enterprise) or known villages (town)


class CountySpec(NamedTuple):
    """A county-level division: code suffix, name, administrative code, committees."""

    suffix: str
    name: str
    admin_code: str
    committees: tuple[CommitteeSpec, ...]


class VenueSpec(NamedTuple):
    """A room with an agent, under an organization."""

    code: str
    name: str
    org_code: str


class SessionSpec(NamedTuple):
    """A demo run (期) of a class; the roster is drawn from the given subtrees and categories."""

    title: str
    topic_code: str
    org_code: str
    day_offset: int  # days from today, local time; negative is in the past
    main_venue: str
    branch_venues: tuple[str, ...]
    roster_orgs: tuple[str, ...]
    roster_categories: tuple[str, ...]
    roster_size: int | None  # None: everyone who qualifies
    plan_class: str | None = None  # the class code of the session organization's plan
    hours: int = 3  # credit hours, and the session's length from 9:00


class LoginSpec(NamedTuple):
    """A demo account with its known password."""

    username: str
    display_name: str
    role: str
    org_code: str | None
    password: str


CITY_COMMITTEES = (
    CommitteeSpec(
        "sz",
        "市直机关工委",
        "organ",
        ("市委组织部机关党支部", "市财政局机关党支部", "市农业农村局机关党支部"),
    ),
    CommitteeSpec(
        "gz",
        "市国资委党委",
        "enterprise",
        ("市城投集团党支部", "市公交集团党支部", "市水务集团党支部"),
    ),
)

COUNTIES = (
    CountySpec(
        "ly",
        "琅琊区",
        "341102",
        (
            CommitteeSpec("lyjd", "琅琊街道党工委", "street"),
            CommitteeSpec("xjjd", "西涧街道党工委", "street"),
            CommitteeSpec("qljd", "清流街道党工委", "street"),
            CommitteeSpec("yzjd", "扬子街道党工委", "street"),
        ),
    ),
    CountySpec(
        "nq",
        "南谯区",
        "341103",
        (
            CommitteeSpec("wy", "乌衣镇党委", "town"),
            CommitteeSpec("sh", "沙河镇党委", "town"),
            CommitteeSpec("zg", "章广镇党委", "town"),
            CommitteeSpec("zl", "珠龙镇党委", "town"),
        ),
    ),
    CountySpec(
        "tc",
        "天长市",
        "341181",
        (
            CommitteeSpec("tc", "铜城镇党委", "town"),
            CommitteeSpec("ql", "秦栏镇党委", "town"),
            CommitteeSpec("dt", "大通镇党委", "town"),
            CommitteeSpec("yc", "杨村镇党委", "town"),
            CommitteeSpec("cj", "汊涧镇党委", "town"),
            CommitteeSpec(
                "jg",
                "天长市直机关工委",
                "organ",
                ("市委组织部机关党支部", "市教体局机关党支部", "市人社局机关党支部"),
            ),
            CommitteeSpec(
                "kfq",
                "天长经济开发区党工委",
                "enterprise",
                ("仪器仪表企业联合党支部", "电子信息企业联合党支部", "新材料企业联合党支部"),
            ),
        ),
    ),
    CountySpec(
        "mg",
        "明光市",
        "341182",
        (
            CommitteeSpec("zbl", "张八岭镇党委", "town"),
            CommitteeSpec("nsh", "女山湖镇党委", "town"),
            CommitteeSpec("gd", "管店镇党委", "town"),
            CommitteeSpec("mgjd", "明光街道党工委", "street"),
        ),
    ),
    CountySpec(
        "la",
        "来安县",
        "341122",
        (
            CommitteeSpec("xa", "新安镇党委", "town"),
            CommitteeSpec("ch", "汊河镇党委", "town"),
            CommitteeSpec("bt", "半塔镇党委", "town"),
            CommitteeSpec("ss", "舜山镇党委", "town"),
        ),
    ),
    CountySpec(
        "qj",
        "全椒县",
        "341124",
        (
            CommitteeSpec("xh", "襄河镇党委", "town"),
            CommitteeSpec("gh", "古河镇党委", "town"),
            CommitteeSpec("wg", "武岗镇党委", "town"),
            CommitteeSpec("mc", "马厂镇党委", "town"),
        ),
    ),
    CountySpec(
        "dy",
        "定远县",
        "341125",
        (
            CommitteeSpec("dc", "定城镇党委", "town"),
            CommitteeSpec("lq", "炉桥镇党委", "town"),
            CommitteeSpec("ot", "藕塘镇党委", "town"),
            CommitteeSpec("zq", "张桥镇党委", "town", ("杨店",)),
            CommitteeSpec("ch", "池河镇党委", "town"),
        ),
    ),
    CountySpec(
        "fy",
        "凤阳县",
        "341126",
        (
            CommitteeSpec("fc", "府城镇党委", "town"),
            CommitteeSpec("xq", "西泉镇党委", "town"),
            CommitteeSpec("xxh", "小溪河镇党委", "town", ("小岗",)),
            CommitteeSpec("lhg", "临淮关镇党委", "town"),
            CommitteeSpec(
                "jg",
                "凤阳县直机关工委",
                "organ",
                ("县委组织部机关党支部", "县农业农村局机关党支部", "县文旅局机关党支部"),
            ),
            CommitteeSpec(
                "kfq",
                "凤阳经济开发区党工委",
                "enterprise",
                ("硅基材料企业联合党支部", "玻璃制品企业联合党支部", "非公企业第三联合党支部"),
            ),
        ),
    ),
)

# Village names are a prefix and a suffix common in the Jianghuai countryside: 陈郢, 大王, 李湾.
VILLAGE_PREFIXES = (
    "陈", "大王", "小李", "杨", "张", "刘", "黄", "周", "吴", "孙", "新", "前", "后", "东", "西",
    "南", "北", "石", "马", "朱", "韦", "高", "何", "金", "郑", "唐", "许", "林", "花", "红",
)  # fmt: skip
VILLAGE_SUFFIXES = (
    "郢", "集", "圩", "岗", "湾", "庄", "店", "桥", "湖", "山", "塘", "营", "楼", "河", "巷",
)  # fmt: skip
COMMUNITY_NAMES = (
    "东苑", "南湖", "丰乐", "龙蟠", "琅琊", "花园", "清流", "紫薇", "凤凰", "明湖", "幸福",
    "和平", "醉翁", "丰山", "永乐", "菱溪", "城南", "滨河", "嘉和", "同心",
)  # fmt: skip

SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金",
    "石", "夏", "韦", "方", "戴", "孔", "缪", "葛", "储", "殷",
)  # fmt: skip
GIVEN_CHARS = (
    "伟", "芳", "娜", "秀", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "霞", "平", "刚", "桂", "英", "华", "建", "国", "文", "玉", "兰", "德",
    "志", "海", "春", "梅", "云", "红", "林", "峰", "成", "庆", "东", "亮", "飞", "雪", "婷",
    "晓", "宇", "鹏", "俊", "慧", "佳", "欣", "浩", "凯", "健", "学", "永", "家", "宏", "梦",
    "如", "松", "令", "青", "兵", "瑞", "思", "新", "立", "荣",
)  # fmt: skip

POLITICAL_THEORY = "political-theory"
VILLAGE_SECRETARY = "village-secretary"
YOUNG_CADRE = "young-cadre"
COLLECTIVE_ECONOMY = "collective-economy"

COUNTY_SCHOOLS = tuple(f"{CITY_CODE}-{county.suffix}-dx" for county in COUNTIES)
TOWN_SCHOOLS = (
    "cz-fy-xq-dx",
    "cz-tc-tc-dx",
    "cz-dy-zq-dx",
    "cz-nq-wy-dx",
    "cz-la-bt-dx",
    "cz-qj-gh-dx",
    "cz-mg-zbl-dx",
)
TRAINING_BASES = ("cz-fy-xxh-sxjd", "cz-tc-sxjd", "cz-dy-sxjd", "cz-qj-sxjd")
MAIN_VENUE = "cz-main"

VENUES = (
    VenueSpec(MAIN_VENUE, "市委党校主会场", CITY_CODE),
    *(
        VenueSpec(
            f"{CITY_CODE}-{county.suffix}-dx",
            f"{county.name}委党校分会场",
            f"{CITY_CODE}-{county.suffix}",
        )
        for county in COUNTIES
    ),
    VenueSpec("cz-fy-xq-dx", "西泉镇党校", "cz-fy-xq"),
    VenueSpec("cz-tc-tc-dx", "铜城镇党校", "cz-tc-tc"),
    VenueSpec("cz-dy-zq-dx", "张桥镇党校", "cz-dy-zq"),
    VenueSpec("cz-nq-wy-dx", "乌衣镇党校", "cz-nq-wy"),
    VenueSpec("cz-la-bt-dx", "半塔镇党校", "cz-la-bt"),
    VenueSpec("cz-qj-gh-dx", "古河镇党校", "cz-qj-gh"),
    VenueSpec("cz-mg-zbl-dx", "张八岭镇党校", "cz-mg-zbl"),
    VenueSpec("cz-fy-xxh-sxjd", "小岗村乡村干部实训基地", "cz-fy-xxh"),
    VenueSpec("cz-tc-sxjd", "天长市乡村干部实训基地", "cz-tc"),
    VenueSpec("cz-dy-sxjd", "定远县乡村干部实训基地", "cz-dy"),
    VenueSpec("cz-qj-sxjd", "全椒县乡村干部实训基地", "cz-qj"),
)

SESSIONS = (
    SessionSpec(
        "年轻干部淬炼成钢能力提升培训（第一期）",
        YOUNG_CADRE,
        CITY_CODE,
        -28,
        MAIN_VENUE,
        COUNTY_SCHOOLS + TRAINING_BASES,
        (CITY_CODE,),
        ("ordinary",),
        360,
        "YC",
    ),
    SessionSpec(
        "政治理论首课：抗大八分校旧址现场教学",
        POLITICAL_THEORY,
        "cz-tc",
        -14,
        "cz-tc-dx",
        ("cz-tc-tc-dx", "cz-tc-sxjd"),
        ("cz-tc",),
        ("ordinary", "secretary", "committee"),
        300,
        "ZZ",
    ),
    SessionSpec(
        "村党组织书记全覆盖兜底培训",
        VILLAGE_SECRETARY,
        CITY_CODE,
        -7,
        MAIN_VENUE,
        COUNTY_SCHOOLS,
        (CITY_CODE,),
        ("secretary", "committee"),
        None,
        "VS",
    ),
    SessionSpec(
        "年轻干部淬炼成钢能力提升培训（第二期）",
        YOUNG_CADRE,
        CITY_CODE,
        1,
        MAIN_VENUE,
        COUNTY_SCHOOLS + TRAINING_BASES + TOWN_SCHOOLS,
        (CITY_CODE,),
        ("ordinary",),
        400,
        "YC",
    ),
    SessionSpec(
        "农村集体经济发展专题培训班",
        COLLECTIVE_ECONOMY,
        "cz-fy",
        3,
        "cz-fy-xq-dx",
        ("cz-fy-xxh-sxjd", "cz-fy-dx"),
        ("cz-fy-xq", "cz-fy-xxh", "cz-fy-fc"),
        ("ordinary", "secretary", "committee"),
        200,
        "JJ",
    ),
)

LOGINS = (
    LoginSpec("admin", "演示管理员", "admin", None, "hetang-admin"),
    LoginSpec("operator", "市委党校主会场操作员", "operator", CITY_CODE, "hetang-operator"),
    LoginSpec("reviewer", "市委组织部审核员", "reviewer", CITY_CODE, "hetang-reviewer"),
    LoginSpec("staff-fy", "凤阳县委党校分会场管理员", "venue_staff", "cz-fy", "hetang-staff"),
)


class ClassSpec(NamedTuple):
    """A class (班次) of a demo plan."""

    code: str
    title: str
    runs: int
    trainees: int
    topics: tuple[str, ...]
    months: tuple[int, ...]
    categories: tuple[str, ...]  # () = every member
    first_lesson: bool


class PlanSpec(NamedTuple):
    """A demo plan (备案) of this year, brought into `state`; a returned one says why."""

    org_code: str
    title: str
    state: str  # "draft", "filed", "accepted" or "returned"
    classes: tuple[ClassSpec, ...]
    comment: str | None = None


def _first_lesson(months: tuple[int, ...], trainees: int) -> ClassSpec:
    return ClassSpec(
        "ZZ", "政治理论首课", len(months), trainees, (POLITICAL_THEORY,), months, (), True
    )


def _winter(trainees: int) -> ClassSpec:
    return ClassSpec(
        "DY", "党员冬训集中轮训", 3, trainees, ("winter-training",), (10, 11, 12), (), False
    )


PLANS = (
    PlanSpec(
        CITY_CODE,
        "滁州市年度党员教育培训计划",
        "accepted",
        (
            ClassSpec(
                "YC",
                "年轻干部淬炼成钢能力提升培训",
                2,
                760,
                (YOUNG_CADRE,),
                (11, 12),
                ("ordinary",),
                False,
            ),
            ClassSpec(
                "VS",
                "村党组织书记全覆盖兜底培训",
                1,
                400,
                (VILLAGE_SECRETARY,),
                (11,),
                ("secretary", "committee"),
                True,
            ),
            _first_lesson((3, 6, 9, 12), 600),
        ),
    ),
    PlanSpec(
        "cz-tc",
        "天长市年度党员教育培训计划",
        "accepted",
        (
            ClassSpec(
                "ZZ",
                "政治理论首课：抗大八分校旧址现场教学",
                2,
                500,
                (POLITICAL_THEORY,),
                (5, 11),
                (),
                True,
            ),
            _winter(900),
        ),
    ),
    PlanSpec(
        "cz-fy",
        "凤阳县年度党员教育培训计划",
        "filed",
        (
            ClassSpec(
                "JJ",
                "农村集体经济发展专题培训班",
                2,
                300,
                (COLLECTIVE_ECONOMY,),
                (11, 12),
                (),
                False,
            ),
            _first_lesson((3,), 450),
        ),
    ),
    PlanSpec("cz-ly", "琅琊区年度党员教育培训计划", "accepted", (_first_lesson((4,), 380),)),
    PlanSpec("cz-dy", "定远县年度党员教育培训计划", "filed", (_winter(600),)),
    PlanSpec(
        "cz-nq",
        "南谯区年度党员教育培训计划",
        "returned",
        (_winter(420),),
        "请补充政治理论首课安排，并按镇街分解参训人数后重新备案。",
    ),
    PlanSpec("cz-qj", "全椒县年度党员教育培训计划", "filed", (_first_lesson((6,), 350),)),
    PlanSpec("cz-la", "来安县年度党员教育培训计划", "draft", (_winter(300),)),
    PlanSpec(
        "cz-sz", "市直机关工委年度党员教育培训计划", "accepted", (_first_lesson((3, 7), 260),)
    ),
    PlanSpec("cz-gz", "市国资委党委年度党员教育培训计划", "filed", (_winter(180),)),
    # 明光市 (cz-mg) has filed nothing: the analysis lists it as 漏备案.
    PlanSpec("cz-fy-xq", "西泉镇年度党员教育培训计划", "filed", (_first_lesson((3, 9), 120),)),
)
# The steps of the city's young-cadre class done so far, as the first run has been held.
DONE_STEPS = (
    "needs_analysis",
    "plan_filing",
    "curriculum",
    "faculty",
    "notice_enrolment",
    "registration_forms",
)
