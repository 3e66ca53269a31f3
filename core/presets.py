"""Facility-type presets (mode, minutes, source) from the Korean living-SOC service standards."""

from __future__ import annotations

from typing import Any

# Sources (see ../shared/SOC-STANDARDS.md):
#   MOLIT-2018: 기초생활인프라 국가적 최저기준 (MOLIT, revised 2018-12-18; 도시재생특별위원회 2019-01-29)
#   MOLIT-2018-draft: the draft values (Yonhap 2018-11-28)
#   NGII-monitoring: 국토모니터링 (국토지리정보원): 10 min walk = 750 m at 4.5 km/h
#   local-policy: no national standard; a local policy choice
PRESETS: dict[str, dict[str, Any]] = {
    "library": {"mode": "car", "minutes": [10], "source": "MOLIT-2018: 국공립도서관 10 min by car"},
    "small_library": {"mode": "walk", "minutes": [15, 10],
                      "source": "MOLIT-2018: 작은도서관 10-15 min walk (15 default, 10 strict)"},
    "daycare": {"mode": "walk", "minutes": [10, 5],
                "source": "MOLIT-2018-draft: 어린이집 5 min walk; NGII-monitoring uses 10 min"},
    "kindergarten": {"mode": "walk", "minutes": [10, 5], "source": "MOLIT-2018: 유치원 5-10 min walk"},
    "elementary_school": {"mode": "walk", "minutes": [15, 10], "source": "MOLIT-2018: 초등학교 10-15 min walk"},
    "senior_centre": {"mode": "walk", "minutes": [10, 5], "source": "MOLIT-2018: 경로당·노인교실 5-10 min walk"},
    "welfare_centre": {"mode": "car", "minutes": [20, 30],
                       "source": "MOLIT-2018: 사회복지관·노인복지관 20-30 min by car"},
    "park": {"mode": "walk", "minutes": [10, 15], "source": "MOLIT-2018: 근린공원 10-15 min walk"},
    "small_sports": {"mode": "walk", "minutes": [10], "source": "MOLIT-2018: 생활체육시설 10 min walk"},
    "public_gym": {"mode": "car", "minutes": [15, 30], "source": "MOLIT-2018: 공공체육시설 15-30 min by car"},
    "culture_centre": {"mode": "car", "minutes": [20], "source": "MOLIT-2018: 문화예술회관 20 min by car"},
    "health_centre": {"mode": "car", "minutes": [20], "source": "MOLIT-2018: 보건소 20 min by car"},
    "clinic": {"mode": "car", "minutes": [20], "source": "MOLIT-2018: 보건소 (public health centre) 20 min by car"},
    "emergency_room": {"mode": "car", "minutes": [30],
                       "source": "MOLIT-2018: 응급실 30 min by car; NGII-monitoring: 30 min drive"},
    "fire_station": {"mode": "car", "minutes": [5],
                     "source": "소방청 golden time: 7 min = 2 min turn-out + 5 min travel"},
    "bike_station": {"mode": "walk", "minutes": [5], "source": "local-policy: 5 min walk (300-500 m)"},
}

# km/h; walk: NGII-monitoring 4.5 km/h; bike: 15 km/h (issue 4); car fallback: MOLIT-2018-draft assumed 25 km/h
SPEEDS_KMH: dict[str, float] = {"walk": 4.5, "bike": 15.0, "car": 25.0}
DETOUR_FACTOR = 1.3  # straight-line -> road distance where no network is loaded (a common planning ratio)
