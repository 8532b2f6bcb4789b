// Defaults the CLI shows in its help, in a module of their own so that naming them loads neither
// the dashboard's server nor the metrics' Prometheus client.

/** Default `DashboardOptions.port`. */
export const DEFAULT_DASHBOARD_PORT = 3000;

/** Default interface of a worker's metrics endpoint: this host only. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
