DROP TABLE resolve_times;
DROP TABLE statistics_monthly;
DROP TABLE kpi_monthly;
DROP TABLE report_summaries;
