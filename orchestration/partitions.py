"""Daily partitions: one partition per UTC day of impressions."""
from dagster import DailyPartitionsDefinition

from training.settings import partition_start

daily_partitions = DailyPartitionsDefinition(start_date=partition_start(), timezone="UTC")
