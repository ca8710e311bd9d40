"""Schedules: retrain the daily chain once a day, after the day's logs are complete; check champion ages."""
from dagster import ScheduleDefinition, build_schedule_from_partitioned_job

from orchestration.jobs import champion_age_job, daily_job

daily_schedule = build_schedule_from_partitioned_job(daily_job, hour_of_day=3, minute_of_hour=0)

#: After the daily chain (03:00) has had time to gate the day's candidates.
champion_age_schedule = ScheduleDefinition(
    name="champion_age_schedule", job=champion_age_job, cron_schedule="0 6 * * *", execution_timezone="UTC",
    description="Daily champion_age checks: a WARN for each gated model whose champion is stale or missing.",
)
