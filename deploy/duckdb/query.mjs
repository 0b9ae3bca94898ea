// Runs each SQL statement given as an argument in one in-memory DuckDB and
// prints each one's rows as a JSON array (DuckDB's JSON form: big integers
// and decimals as strings), one line per statement. The tests use it to
// read what `loader export` wrote with a Parquet reader nobody here wrote.
//
//   node deploy/duckdb/query.mjs "SELECT count(*) FROM 'products.parquet'"
import { DuckDBInstance } from '@duckdb/node-api';

const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
for (const sql of process.argv.slice(2)) {
  try {
    const result = await conn.runAndReadAll(sql);
    process.stdout.write(JSON.stringify(result.getRowObjectsJson()) + '\n');
  } catch (err) {
    process.stderr.write(`duckdb: ${sql}: ${err.message}\n`);
    process.exit(1);
  }
}
