"""The ten-step class workflow (十步工作法): the city's default steps, an admin's renames and
order merged over them, the print templates of each step, and the rules for marking a step and
for changing the list. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from server.domain import validation as v
from server.domain.reports import coverage_pct

# The fixed keys, in the city's default order; templates and stored marks hang on them.
STEP_KEYS = (
    "needs_analysis",
    "plan_filing",
    "curriculum",
    "faculty",
    "notice_enrolment",
    "registration_forms",
    "opening_signin",
    "teaching_attendance",
    "evaluation",
    "archiving",
)
STEP_LABELS = MappingProxyType(
    {
        "needs_analysis": "Needs analysis",
        "plan_filing": "Plan filing",
        "curriculum": "Curriculum design",
        "faculty": "Faculty selection",
        "notice_enrolment": "Notice and enrolment",
        "registration_forms": "Registration forms",
        "opening_signin": "Opening and sign-in",
        "teaching_attendance": "Teaching and attendance",
        "evaluation": "Evaluation survey",
        "archiving": "Summary and archiving",
    }
)
MAX_STEP_NAME = 100
MAX_NOTE = 500
NOT_A_POSITION = "must be a whole number from 1 to 10"
POSITION_TWICE = "is given to another step too"
NOT_ON_OR_OFF = "must be on or off"


@dataclass(frozen=True)
class StepSetting:
    """An admin's setting of one step as stored: its position (1…10) and name (None: default)."""

    key: str
    position: int
    name: str | None


@dataclass(frozen=True)
class Step:
    """One step of the list as it stands: stored settings over the defaults."""

    key: str
    position: int
    name: str | None  # an admin's name; None shows the translated default (label)
    label: str  # the default name's msgid


def default_position(key: str) -> int:
    """Where the city's list puts a step (1…10)."""
    return STEP_KEYS.index(key) + 1


def merge_steps(stored: Iterable[StepSetting]) -> list[Step]:
    """The ten steps in order: a stored setting wins; a key without one keeps its default.
    Ties (a partial or odd stored order) fall back to the default order; unknown keys are
    ignored."""
    by_key = {setting.key: setting for setting in stored if setting.key in STEP_LABELS}
    steps = []
    for key in STEP_KEYS:
        setting = by_key.get(key)
        position = setting.position if setting else default_position(key)
        steps.append(Step(key, position, setting.name if setting else None, STEP_LABELS[key]))
    steps.sort(key=lambda step: (step.position, default_position(step.key)))
    return [Step(step.key, number, step.name, step.label) for number, step in enumerate(steps, 1)]


@dataclass(frozen=True)
class StepMark:
    """A step marked done or not done, with an optional note."""

    done: bool
    note: str | None


def parse_mark(raw: Mapping[str, object]) -> tuple[StepMark | None, v.Problems]:
    """Check a mark: done is "on" or "off"; the note is optional, at most 500 characters, and
    may run over several lines."""
    problems = v.Problems()
    done = raw.get("done")
    if done not in ("on", "off"):
        problems["done"] = NOT_ON_OR_OFF
    note = raw.get("note")
    text: str | None = None
    if note is not None and not isinstance(note, str):
        problems["note"] = v.NOT_TEXT
    elif note:
        text = note.replace("\r\n", "\n").strip() or None
        if text is not None and len(text) > MAX_NOTE:
            problems["note"] = v.TOO_LONG
        elif text is not None and any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
            problems["note"] = v.CONTROL_CHARS
    if problems:
        return None, problems
    return StepMark(done == "on", text), problems


def parse_step_list(
    raw: Mapping[str, object], defaults: Mapping[str, str]
) -> tuple[list[StepSetting] | None, v.Problems]:
    """Check a renamed and reordered list: `name_<key>` (1…100 characters; the default name as
    the reader sees it, given in `defaults`, or its msgid means "no rename") and
    `position_<key>`, which together must number the ten steps 1…10, each once."""
    problems = v.Problems()
    settings: list[StepSetting] = []
    owners: dict[int, list[str]] = {}
    for key in STEP_KEYS:
        name = v.text(raw, f"name_{key}", problems, max_len=MAX_STEP_NAME)
        position = _position(raw.get(f"position_{key}"))
        if position is None:
            problems[f"position_{key}"] = NOT_A_POSITION
        else:
            owners.setdefault(position, []).append(key)
        if name is not None and name in (defaults.get(key), STEP_LABELS[key]):
            name = None
        settings.append(StepSetting(key, position or 0, name))
    for keys in owners.values():
        if len(keys) > 1:
            for key in keys:
                problems[f"position_{key}"] = POSITION_TWICE
    if problems:
        return None, problems
    return sorted(settings, key=lambda setting: setting.position), problems


def _position(value: object) -> int | None:
    if (
        not isinstance(value, str)
        or not (value.strip().isascii() and value.strip().isdigit())
        or len(value.strip()) > 2
    ):
        return None
    number = int(value.strip())
    return number if 1 <= number <= len(STEP_KEYS) else None


@dataclass(frozen=True)
class PrintTemplate:
    """A printable form of a step: its key (in the URL), its Chinese title as printed, and
    the file under web/templates/print/."""

    key: str
    title: str
    step: str

    @property
    def file(self) -> str:
        """The jinja2 template that renders it."""
        return f"print/{self.key}.html"


# The city's template set (滁州 “十步工作法” 20余个模板): the forms are filed in Chinese, so
# their titles are the documents' own.
PRINT_TEMPLATES = (
    PrintTemplate("needs_survey", "需求调研问卷", "needs_analysis"),
    PrintTemplate("needs_report", "需求分析报告", "needs_analysis"),
    PrintTemplate("filing_form", "培训计划备案表", "plan_filing"),
    PrintTemplate("course_settings", "课程设置表", "curriculum"),
    PrintTemplate("timetable", "课程表", "curriculum"),
    PrintTemplate("faculty_invitation", "师资邀请函", "faculty"),
    PrintTemplate("faculty_register", "授课教师登记表", "faculty"),
    PrintTemplate("opening_notice", "开班通知", "notice_enrolment"),
    PrintTemplate("enrolment_receipt", "报名回执", "notice_enrolment"),
    PrintTemplate("enrolment_summary", "报名汇总表", "notice_enrolment"),
    PrintTemplate("trainee_register", "学员登记表", "registration_forms"),
    PrintTemplate("trainee_groups", "学员分组名单", "registration_forms"),
    PrintTemplate("signin_sheet", "开班签到表", "opening_signin"),
    PrintTemplate("venue_signin_summary", "分会场签到汇总表", "opening_signin"),
    PrintTemplate("attendance_record", "考勤记录表", "teaching_attendance"),
    PrintTemplate("teaching_log", "教学日志", "teaching_attendance"),
    PrintTemplate("evaluation_survey", "评估问卷", "evaluation"),
    PrintTemplate("evaluation_summary", "评估汇总表", "evaluation"),
    PrintTemplate("summary_report", "培训总结报告", "archiving"),
    PrintTemplate("certificate", "结业证书/学时证明", "archiving"),
    PrintTemplate("archive_index", "归档目录", "archiving"),
)
TEMPLATES_BY_KEY = MappingProxyType({template.key: template for template in PRINT_TEMPLATES})


def templates_of(step: str) -> tuple[PrintTemplate, ...]:
    """The print templates that belong to a step, in the catalogue's order."""
    return tuple(template for template in PRINT_TEMPLATES if template.step == step)


@dataclass(frozen=True)
class Tally:
    """Attendance figures over a class's finalized runs."""

    runs_finalized: int
    expected: int
    present: int
    partial: int
    absent: int
    credited_hours: Decimal

    @property
    def rate_pct(self) -> Decimal:
        """Present (fully or partly) as a share of results, half up to one decimal; 0 with none."""
        total = self.present + self.partial + self.absent
        return coverage_pct(self.present + self.partial, total)


def tally(runs: Iterable[Iterable[tuple[str, Decimal, bool]]]) -> Tally:
    """Count the results of each finalized run: (status, credit hours, on the roster)."""
    counts = dict.fromkeys(("present", "partial", "absent"), 0)
    finalized, expected, hours = 0, 0, Decimal(0)
    for results in runs:
        finalized += 1
        for status, credit, rostered in results:
            counts[status] = counts.get(status, 0) + 1
            expected += rostered
            hours += credit
    return Tally(finalized, expected, counts["present"], counts["partial"], counts["absent"], hours)
