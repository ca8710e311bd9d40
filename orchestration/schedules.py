"""Schedules: retrain the daily chain once a day, after the day's logs are complete."""
from dagster import build_schedule_from_partitioned_job

from orchestration.jobs import daily_job

daily_schedule = build_schedule_from_partitioned_job(daily_job, hour_of_day=3, minute_of_hour=0)
