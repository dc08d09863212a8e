/** A node of `EXPLAIN (ANALYZE, FORMAT JSON)` output, with the fields the plan tests read. */
export type PlanNode = {
  "Node Type": string;
  "Subplan Name"?: string;
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Index Recheck"?: number;
  Plans?: PlanNode[];
};

/** The node and every node below it, depth first. */
export const planNodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(planNodes)];

/** The plan tree of one `EXPLAIN (..., FORMAT JSON)` result row set. */
export const planOf = (rows: { "QUERY PLAN": unknown }[]): PlanNode => (rows[0]!["QUERY PLAN"] as [{ Plan: PlanNode }])[0].Plan;
