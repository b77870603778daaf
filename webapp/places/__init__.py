"""Where things are in Japan: local government codes, prefectures, kana readings.

Pure Python (no Flask, no database): shared by providers (facilities) and points
(municipalities), so one municipality is one code everywhere.
"""
