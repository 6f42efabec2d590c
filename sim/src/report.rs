//! Campaign reports: a self-contained HTML page of plots over the seeds of a campaign.
