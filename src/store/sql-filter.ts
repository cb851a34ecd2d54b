import type { FilterExpression, MessageLogField, MessageLogQuery } from './types.ts';

const SQL_OPERATORS = { eq: '=', ne: '<>', gt: '>', lt: '<', ge: '>=', le: '<=' } as const;

/**
 * Compiles a parsed $filter / $orderby to SQL shared by SQLite and PostgreSQL.
 * Field names come from the closed list in MESSAGE_LOG_FIELDS (checked by the parser), values are always bound.
 * `placeholder(n)` renders the n-th (1-based) bound parameter: `?` for SQLite, `$n` for PostgreSQL.
 */
export function compileFilter(
  filter: FilterExpression | undefined,
  placeholder: (n: number) => string,
): { where: string; params: (string | number)[] } {
  if (!filter) return { where: '', params: [] };
  const params: (string | number)[] = [];
  const walk = (node: FilterExpression): string => {
    if (node.kind === 'logical') return `(${walk(node.left)} ${node.operator.toUpperCase()} ${walk(node.right)})`;
    const column = `"${node.field}"`;
    if (node.value === null) {
      if (node.operator === 'eq') return `${column} IS NULL`;
      if (node.operator === 'ne') return `${column} IS NOT NULL`;
      return 'FALSE';
    }
    params.push(node.value);
    // OData's ne keeps rows whose field is null; SQL's <> alone would drop them.
    if (node.operator === 'ne') return `(${column} <> ${placeholder(params.length)} OR ${column} IS NULL)`;
    return `${column} ${SQL_OPERATORS[node.operator]} ${placeholder(params.length)}`;
  };
  return { where: `WHERE ${walk(filter)}`, params };
}

/**
 * ORDER BY for $orderby. On the `nullable` fields (PostgreSQL passes its own) nulls are placed as SQLite places
 * them, as the smallest value: NULLS FIRST ascending, NULLS LAST descending. Only there: an explicit NULLS clause
 * on a NOT NULL column would keep PostgreSQL from scanning its index backwards.
 */
export function compileOrderBy(orderBy: MessageLogQuery['orderBy'], nullable?: ReadonlySet<MessageLogField>): string {
  const terms = orderBy.map(({ field, direction }) => {
    const desc = direction === 'desc';
    const nulls = nullable?.has(field) ? (desc ? ' NULLS LAST' : ' NULLS FIRST') : '';
    return `"${field}" ${desc ? 'DESC' : 'ASC'}${nulls}`;
  });
  // A stable tiebreaker keeps $skip paging deterministic.
  terms.push('"MessageGuid" ASC');
  return `ORDER BY ${terms.join(', ')}`;
}
