"""The demo city's last twelve months of training, as session specs: every county's monthly
joint study session (each member's 3 学时 a month), the city's monthly class for branch
secretaries and committee members (3 more: their requirement is 56 学时), and each county's
full-day winter training in January — enough that most members meet the yearly requirement,
as in a real city, while those who skip classes fall short and a few never come."""

from __future__ import annotations

from datetime import date, timedelta

from server.demo import data

LEADERS = ("secretary", "committee")
EVERYONE = ("ordinary", *LEADERS)
MONTHS_BACK = 12
STUDY_DAY, LEADERS_DAY, WINTER_DAY = 10, 20, 15  # days of the month, moved off weekends
WINTER_HOURS = 6
Area = tuple[str, str, str, tuple[str, ...]]  # organization, name, main venue, branch venues

# The month's theme of the members' joint study (主题), January to December.
THEMES = (
    "学习贯彻党的二十大精神",
    "党纪学习教育：《中国共产党纪律处分条例》",
    "学雷锋与新时代群众工作",
    "总体国家安全观",
    "乡村振兴与农村集体经济发展",
    "“七一”专题党课：党史学习教育",
    "基层治理与为民办实事",
    "生态文明建设与长江大保护",
    "法治教育：宪法与民法典",
    "安全生产与防灾减灾",
    "数字乡村与信息化技能",
    "廉洁文化建设",
)
LEADER_THEMES = (
    "抓党建促基层治理能力提升",
    "发展党员工作规范",
    "“三会一课”与主题党日规范化",
    "党组织书记述职评议考核",
    "村级集体经济项目管理",
    "党员教育管理与流动党员服务",
    "网格化治理与矛盾纠纷化解",
    "村务公开与“四议两公开”",
    "防汛抗旱与应急处置",
    "换届后班子建设与履职",
    "惠民政策落实与群众工作方法",
    "党建引领共富工坊建设",
)


def _weekday(day: date) -> date:
    """The day, or the Monday after when it falls on a weekend."""
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


def _months(today: date, back: int) -> list[tuple[int, int]]:
    """(year, month) from `back` months ago to this month; a year's worth starts in January
    when last month's report is that of a whole year gone by (so that it is complete)."""
    first = (today.year * 12 + today.month - 1) - back
    if back >= MONTHS_BACK and today.month == 1:
        first = min(first, (today.year - 1) * 12)
    last = today.year * 12 + today.month - 1
    return [(index // 12, index % 12 + 1) for index in range(first, last + 1)]


def _areas() -> list[Area]:
    """Where the members meet each month: (organization, name, main venue, branch venues) —
    each county at its party school with its towns' rooms, the city's own committees at the
    city's."""
    venues_of: dict[str, list[str]] = {}
    for venue in data.VENUES:
        county_code = "-".join(venue.org_code.split("-")[:2])
        if venue.code not in (data.MAIN_VENUE, *data.COUNTY_SCHOOLS):
            venues_of.setdefault(county_code, []).append(venue.code)
    areas: list[Area] = [(data.CITY_CODE, "市直", data.MAIN_VENUE, ())]
    for county in data.COUNTIES:
        code = f"{data.CITY_CODE}-{county.suffix}"
        areas.append((code, county.name, f"{code}-dx", tuple(sorted(venues_of.get(code, [])))))
    return areas


def year_sessions(today: date, back: int = MONTHS_BACK) -> list[data.SessionSpec]:
    """The held sessions from `back` months ago to yesterday, oldest first."""
    city_own = tuple(f"{data.CITY_CODE}-{spec.suffix}" for spec in data.CITY_COMMITTEES)
    specs: list[tuple[date, data.SessionSpec]] = []

    def add(
        day: date,
        title: str,
        topic: str,
        where: Area,
        hours: int = 3,
        whom: tuple[str, ...] = EVERYONE,
    ) -> None:
        """A class of `whom` in an area (the city's: of its own committees, unless for
        leaders), when held by now."""
        org, _, main, branches = where
        if day >= today:
            return
        whole_subtree = org != data.CITY_CODE or whom == LEADERS
        roster_orgs = (org,) if whole_subtree else city_own
        offset = (day - today).days
        specs.append(
            (
                day,
                data.SessionSpec(
                    title, topic, org, offset, main, branches, roster_orgs, whom, None, None, hours
                ),
            )
        )

    leaders_area: Area = (data.CITY_CODE, "", data.MAIN_VENUE, data.COUNTY_SCHOOLS)
    for year, month in _months(today, back):
        theme, leaders = THEMES[month - 1], LEADER_THEMES[month - 1]
        for index, area in enumerate(_areas()):
            name = area[1]
            study = _weekday(date(year, month, STUDY_DAY + index % 3))
            add(
                study,
                f"{name}{month}月党员集中学习：{theme}",
                f"monthly-study-{year}-{month:02d}",
                area,
            )
            if month == 1:
                add(
                    _weekday(date(year, month, WINTER_DAY + index % 3)),
                    f"{name}党员冬训集中轮训（{year}年）",
                    f"winter-training-{year}",
                    area,
                    WINTER_HOURS,
                )
        add(
            _weekday(date(year, month, LEADERS_DAY)),
            f"{month}月基层党组织书记、委员集中轮训：{leaders}",
            f"leaders-study-{year}-{month:02d}",
            leaders_area,
            whom=LEADERS,
        )
    return [spec for _, spec in sorted(specs, key=lambda item: item[0])]
