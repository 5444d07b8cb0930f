package sqlstore_test

import (
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// schemaOf describes a migrated database: per table, its columns
// ("name class null|notnull") and indexes ("name unique? partial? (cols)"),
// each sorted. Types are compared by class: SQLite keeps booleans as
// integers, so a PostgreSQL boolean matches an SQLite integer.
func schemaOf(t *testing.T, backend string) map[string][]string {
	t.Helper()
	dsn := testdb.DSN(t, backend)
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw := openRaw(t, backend, dsn)
	rows := func(q string, args ...any) [][]string {
		t.Helper()
		r, err := raw.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer r.Close()
		cols, _ := r.Columns()
		var out [][]string
		for r.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = v.String
			}
			out = append(out, row)
		}
		return out
	}
	class := func(typ string) string {
		switch typ = strings.ToLower(typ); {
		case strings.Contains(typ, "int"), typ == "boolean":
			return "int"
		case strings.Contains(typ, "text"), strings.Contains(typ, "char"):
			return "text"
		case typ == "real", strings.Contains(typ, "double"), strings.Contains(typ, "float"):
			return "float"
		}
		return typ
	}
	norm := func(cols string) string {
		return strings.NewReplacer(" ", "", `"`, "", "\n", "", "\t", "").Replace(strings.ToLower(cols))
	}
	out := map[string][]string{}
	switch backend {
	case "sqlite":
		for _, tb := range rows(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`) {
			name := tb[0]
			var desc []string
			for _, c := range rows(`SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, name) {
				null := "null"
				if c[2] == "1" || c[3] != "0" {
					null = "notnull"
				}
				desc = append(desc, "column "+c[0]+" "+class(c[1])+" "+null)
			}
			for _, ix := range rows(`SELECT name, "unique", partial, origin FROM pragma_index_list(?)`, name) {
				if ix[3] != "c" {
					continue // primary keys and UNIQUE constraints: covered by the columns' definition
				}
				var cols []string
				for _, c := range rows(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix[0]) {
					if c[0] == "" {
						c[0] = "<expr>"
					}
					cols = append(cols, c[0])
				}
				desc = append(desc, fmt.Sprintf("index %s unique=%s partial=%s (%s)", ix[0], ix[1], ix[2], norm(strings.Join(cols, ","))))
			}
			sort.Strings(desc)
			out[name] = desc
		}
	case "postgres":
		for _, tb := range rows(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`) {
			name := tb[0]
			var desc []string
			for _, c := range rows(`SELECT column_name, data_type, is_nullable FROM information_schema.columns
				WHERE table_schema = 'public' AND table_name = $1`, name) {
				null := "null"
				if c[2] == "NO" {
					null = "notnull"
				}
				desc = append(desc, "column "+c[0]+" "+class(c[1])+" "+null)
			}
			onCols := regexp.MustCompile(`USING \w+ \((.*?)\)(?: WHERE (.*))?$`)
			for _, ix := range rows(`SELECT i.indexname, i.indexdef, x.indisunique, x.indisprimary,
					EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
				FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid
				WHERE i.schemaname = 'public' AND i.tablename = $1`, name) {
				if ix[3] == "true" || ix[4] == "true" {
					continue // primary keys and UNIQUE constraints
				}
				m := onCols.FindStringSubmatch(ix[1])
				if m == nil {
					t.Fatalf("cannot read index %s", ix[1])
				}
				cols := strings.Split(m[1], ",")
				for i, c := range cols {
					if c = strings.TrimSpace(c); strings.ContainsAny(c, "() ") {
						cols[i] = "<expr>"
					}
				}
				unique, partial := "0", "0"
				if ix[2] == "true" {
					unique = "1"
				}
				if m[2] != "" {
					partial = "1"
				}
				desc = append(desc, fmt.Sprintf("index %s unique=%s partial=%s (%s)", ix[0], unique, partial, norm(strings.Join(cols, ","))))
			}
			sort.Strings(desc)
			out[name] = desc
		}
	}
	return out
}

// TestMigrationsMatch: the SQLite and PostgreSQL migrations build the same
// tables, with the same columns (name, type class, nullability) and the
// same indexes (name, columns, uniqueness, partial or not).
func TestMigrationsMatch(t *testing.T) {
	lite, pg := schemaOf(t, "sqlite"), schemaOf(t, "postgres")
	var tables []string
	for name := range lite {
		tables = append(tables, name)
	}
	for name := range pg {
		if _, ok := lite[name]; !ok {
			tables = append(tables, name)
		}
	}
	sort.Strings(tables)
	for _, name := range tables {
		a, b := lite[name], pg[name]
		for _, d := range a {
			if !slices.Contains(b, d) {
				t.Errorf("table %s: SQLite has %q, PostgreSQL does not", name, d)
			}
		}
		for _, d := range b {
			if !slices.Contains(a, d) {
				t.Errorf("table %s: PostgreSQL has %q, SQLite does not", name, d)
			}
		}
	}
	if len(tables) < 15 {
		t.Fatalf("only %d tables compared", len(tables))
	}
	t.Logf("%d tables compared", len(tables))
}
