"""The shape of the generated product: vocabularies, weights and behaviour parameters.

Everything the generator draws from lives here, so the data's "story" reads in one place:
visitors arrive (more on weekdays and in daytime, local to their country), browse in sessions,
some sign up (and identify), fewer activate, fewer still purchase (with monthly renewals), and
they come back on later days and weeks with a decaying probability.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

# Fixed default end of the data window, so the default output is byte-for-byte reproducible.
DEFAULT_END = datetime(2026, 1, 1, tzinfo=UTC)

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

# Measured mean events per person of the model below (over a 90-day window, before the end
# cut-off); only used to size each chunk's population, exactness comes from truncation.
EVENTS_PER_PERSON = 8.2

# (country, UTC offset in hours, share of visitors)
COUNTRIES: list[tuple[str, int, float]] = [
    ("US", -5, 0.34),
    ("GB", 0, 0.09),
    ("DE", 1, 0.08),
    ("IN", 5, 0.08),
    ("FR", 1, 0.06),
    ("CA", -5, 0.05),
    ("BR", -3, 0.05),
    ("JP", 9, 0.04),
    ("AU", 10, 0.04),
    ("NL", 1, 0.03),
    ("ES", 1, 0.03),
    ("MX", -6, 0.03),
    ("PL", 1, 0.02),
    ("SE", 1, 0.02),
    ("IT", 1, 0.02),
    ("KR", 9, 0.02),
]

# (os, device type, share); the browser is then drawn from BROWSER_GIVEN_OS.
OSES: list[tuple[str, str, float]] = [
    ("Windows", "Desktop", 0.36),
    ("Mac OS X", "Desktop", 0.20),
    ("iOS", "Mobile", 0.19),
    ("Android", "Mobile", 0.20),
    ("Linux", "Desktop", 0.05),
]
BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge", "Samsung Internet", "Opera"]
# Rows follow OSES, columns follow BROWSERS.
BROWSER_GIVEN_OS = np.array(
    [
        [0.66, 0.00, 0.10, 0.20, 0.00, 0.04],
        [0.45, 0.45, 0.07, 0.02, 0.00, 0.01],
        [0.22, 0.76, 0.01, 0.01, 0.00, 0.00],
        [0.70, 0.00, 0.03, 0.01, 0.24, 0.02],
        [0.70, 0.00, 0.27, 0.00, 0.00, 0.03],
    ]
)

# Visits per local hour of day (relative): quiet at night, busy in office hours.
HOUR_WEIGHTS = np.array(
    [0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.25, 0.50, 0.80, 1.00, 1.10, 1.10,
     1.05, 1.10, 1.10, 1.05, 1.00, 0.95, 0.90, 0.85, 0.80, 0.70, 0.55, 0.40]
)  # fmt: skip
# Share of would-be visits that still happen on a Saturday/Sunday.
WEEKEND_KEEP = 0.55
# New visitors per day grow linearly by this factor over the window (a growing product).
GROWTH = 0.5

# Events inside a session other than the opening pageview, Zipf-skewed (first is most common).
SESSION_EVENTS = [
    "$pageview",
    "$autocapture",
    "$pageleave",
    "button_clicked",
    "dashboard_viewed",
    "search_performed",
    "item_viewed",
    "filter_applied",
    "$rageclick",
    "added_to_cart",
    "comment_added",
    "notification_clicked",
    "$feature_flag_called",
    "settings_updated",
    "file_uploaded",
    "report_exported",
    "invite_sent",
    "video_played",
    "share_clicked",
    "help_opened",
    "removed_from_cart",
    "checkout_started",
    "onboarding_step_completed",
    "project_created",
    "$exception",
    "api_key_created",
]
SESSION_EVENT_WEIGHTS = 1.0 / np.arange(1, len(SESSION_EVENTS) + 1) ** 1.1
FUNNEL_EVENTS = ["signup", "$identify", "activated", "purchase"]
EVENT_NAMES = SESSION_EVENTS + FUNNEL_EVENTS
EV_PAGEVIEW = 0
EV_SIGNUP, EV_IDENTIFY, EV_ACTIVATED, EV_PURCHASE = (
    len(SESSION_EVENTS) + i for i in range(len(FUNNEL_EVENTS))
)

# Page paths for $current_url (Zipf-skewed), and the fixed path of each funnel step.
PATHS = [
    "/", "/app", "/app/dashboard", "/pricing", "/docs", "/blog", "/features", "/app/settings",
    "/login", "/app/reports", "/blog/launch-week", "/docs/getting-started", "/about", "/careers",
    "/signup", "/app/onboarding", "/checkout",
]  # fmt: skip
PATH_WEIGHTS = 1.0 / np.arange(1, len(PATHS) - 2 + 1) ** 0.9  # funnel-only paths excluded
PATH_OF_FUNNEL = {
    EV_SIGNUP: PATHS.index("/signup"),
    EV_IDENTIFY: PATHS.index("/signup"),
    EV_ACTIVATED: PATHS.index("/app/onboarding"),
    EV_PURCHASE: PATHS.index("/checkout"),
}

# Session behaviour. A share of visitors never return; the others return with a per-person
# probability q ~ Beta(a, b) after each session (geometric number of returns, so retention
# decays), with gaps that are either habitual (about a week) or short (lognormal, days).
BOUNCE_SHARE = 0.42
RETURN_BETA = (3.0, 2.2)
MAX_RETURNS = 60
WEEKLY_HABIT_SHARE = 0.4
SHORT_GAP_MEDIAN_DAYS = 1.5
SHORT_GAP_SIGMA = 1.0
# Extra events per session ~ geometric: mean 1/p - 1 beyond the opening pageview.
SESSION_EXTRA_P = 0.24
EVENT_GAP_MEAN_S = 45.0

# Funnel. Signup probability rises with engagement q; the step conversions are fixed.
SIGNUP_BASE, SIGNUP_PER_Q = 0.08, 0.35
ACTIVATE_P = 0.55
PURCHASE_P = 0.40
ACTIVATE_DELAY_MEDIAN_H, ACTIVATE_DELAY_SIGMA = 2.0, 1.5
PURCHASE_DELAY_MEDIAN_H, PURCHASE_DELAY_SIGMA = 48.0, 1.2
RENEWAL_P = 0.6  # purchasers on a monthly plan renew every 30 days while the window lasts
MAX_RENEWALS = 3

# Paid plans: (name, share, monthly price in cents).
PLANS: list[tuple[str, float, int]] = [
    ("starter", 0.55, 1900),
    ("pro", 0.35, 4900),
    ("enterprise", 0.10, 29900),
]
