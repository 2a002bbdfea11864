package template_test

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

const modulePath = "github.com/wsnotify/wsnotify"

// functionEnv is the contract between the template and the mains: the
// variables the template sets for each function.
var functionEnv = map[string][]string{
	"ConnectFunction":    {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"DisconnectFunction": {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"DefaultFunction":    {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"JobEventsFunction":  {"FANOUT_CONCURRENCY", "LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"S3UploadFunction":   {"FANOUT_CONCURRENCY", "LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME", "UPLOAD_PREFIX"},
}

// optionalEnv are variables a main may read that the template leaves unset,
// except for the functions listed.
var optionalEnv = map[string][]string{
	"DYNAMODB_ENDPOINT":  nil,
	"UPLOAD_PREFIX":      {"S3UploadFunction"},
	"FANOUT_CONCURRENCY": {"JobEventsFunction", "S3UploadFunction"},
}

// lambdaEnv are the variables the Lambda runtime sets itself.
var lambdaEnv = []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "TZ"}

func templateEnv(t *testing.T, tpl *template.Template, id string) map[string]any {
	t.Helper()
	env, _ := dig(functionProps(t, tpl, id), "Environment", "Variables").(map[string]any)
	return env
}

func TestTemplateSetsTheEnvironmentContract(t *testing.T) {
	tpl := repoTemplate(t)
	for id, want := range functionEnv {
		env := templateEnv(t, tpl, id)
		if got := slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
			t.Errorf("%s sets %v, want %v", id, got, want)
		}
		const endpoint = "Sub(https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName})"
		if got := describe(env["MANAGEMENT_API_ENDPOINT"]); got != endpoint {
			t.Errorf("%s: MANAGEMENT_API_ENDPOINT = %s, want %s", id, got, endpoint)
		}
	}
}

func TestEveryVariableAMainReadsIsSetForItsFunction(t *testing.T) {
	tpl := repoTemplate(t)
	root := testenv.RepoRoot(t)
	for id, dir := range testenv.Functions {
		t.Run(id, func(t *testing.T) {
			scan, err := scanEnv(root, modulePath, modulePath+"/functions/"+dir)
			if err != nil {
				t.Fatalf("scan functions/%s: %v", dir, err)
			}
			for _, u := range scan.Unresolved {
				t.Errorf("cannot tell which environment variable this reads: %s", u)
			}
			env := templateEnv(t, tpl, id)
			for _, r := range scan.Reads {
				if _, set := env[r.Name]; set || slices.Contains(lambdaEnv, r.Name) {
					continue
				}
				if required, ok := optionalEnv[r.Name]; ok && !slices.Contains(required, id) {
					continue
				}
				t.Errorf("%s reads %s (%s), which template.yaml does not set for %s", dir, r.Name, r.Pos, id)
			}
		})
	}
}

func TestEnvScanFollowsAccessorsThroughTheModule(t *testing.T) {
	root := filepath.Join("testdata", "template_checks", "envscan")
	scan, err := scanEnv(root, "example.com/envscan", "example.com/envscan/main")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"APP_JOINED", "DIRECT", "FIELD", "LISTED_A", "LISTED_B", "REGION", "TABLE", "WRAPPED"}
	if got := scan.Names(); !slices.Equal(got, want) || len(scan.Unresolved) != 2 {
		t.Errorf("reads %v, want %v; unresolved %q", got, want, scan.Unresolved)
	}
}

// This file finds the environment variables a Lambda main reads, so that a
// check can compare them with what template.yaml sets for its function.
//
// A main seldom calls os.Getenv("X") itself: it passes os.LookupEnv to a
// config loader, which calls it through a closure with named constants. So
// the scan type-checks the main and every package of the module it imports
// and follows the environment accessor through values:
//
//   - os.Getenv and os.LookupEnv read the variable their first argument names;
//   - a function or closure whose parameter p is passed where a variable name
//     goes reads the variable named by its own argument p;
//   - a function-typed parameter, variable or field that receives an accessor
//     becomes one.
//
// Names are taken from constant expressions (literals, named constants of any
// package of the module, concatenations) and from ranges over composite
// literals of constants. A read whose name cannot be found that way, or an
// accessor handed to code outside the module, is reported as unresolved: the
// check fails rather than miss a variable. Struct tags `env:"X"` and
// `envconfig:"X"` count as reads too, for config libraries that use them.
// Packages outside the module are not type-checked (the SDK's variables are
// its own business); their imports resolve to empty packages.

// envRead is one read of an environment variable.
type envRead struct {
	Name string
	Pos  string // file:line, relative to the module root
}

// envScan is the result of scanning one program.
type envScan struct {
	Reads      []envRead
	Unresolved []string // positions and reasons of reads the scan cannot name
}

// Names returns the variables read, sorted, once each.
func (s envScan) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range s.Reads {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

// envScanner type-checks the packages of one module.
type envScanner struct {
	root   string // module root directory
	module string // module path
	fset   *token.FileSet
	build  build.Context
	pkgs   map[string]*scannedPackage // by import path
	fakes  map[string]*types.Package
}

type scannedPackage struct {
	files []*ast.File
	info  *types.Info
	types *types.Package
}

func newEnvScanner(root, module string) *envScanner {
	ctx := build.Default
	// As the Makefile builds the functions for Lambda.
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "arm64", false
	ctx.BuildTags = []string{"lambda.norpc"}
	return &envScanner{
		root: root, module: module, fset: token.NewFileSet(), build: ctx,
		pkgs: map[string]*scannedPackage{}, fakes: map[string]*types.Package{},
	}
}

// inModule reports whether importPath belongs to the scanned module.
func (s *envScanner) inModule(importPath string) bool {
	return importPath == s.module || strings.HasPrefix(importPath, s.module+"/")
}

// Import implements types.Importer: the module's packages from source,
// anything else as an empty package.
func (s *envScanner) Import(importPath string) (*types.Package, error) {
	if s.inModule(importPath) {
		p, err := s.load(importPath)
		if err != nil {
			return nil, err
		}
		return p.types, nil
	}
	if p, ok := s.fakes[importPath]; ok {
		return p, nil
	}
	// The package name is a guess (…/v2 → its parent, yaml.v3 → yaml); a
	// wrong guess only leaves that package's identifiers unresolved.
	name := path.Base(importPath)
	if majorVersion.MatchString(name) {
		name = path.Base(path.Dir(importPath))
	}
	name, _, _ = strings.Cut(strings.TrimPrefix(name, "go-"), ".")
	p := types.NewPackage(importPath, name)
	p.MarkComplete()
	s.fakes[importPath] = p
	return p, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// load parses and type-checks the module package importPath, once.
func (s *envScanner) load(importPath string) (*scannedPackage, error) {
	if p, ok := s.pkgs[importPath]; ok {
		return p, nil
	}
	dir := filepath.Join(s.root, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(importPath, s.module), "/")))
	bp, err := s.build.ImportDir(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", importPath, err)
	}
	p := &scannedPackage{info: &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Defs:  map[*ast.Ident]types.Object{},
		Uses:  map[*ast.Ident]types.Object{},
	}}
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(s.fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", importPath, err)
		}
		p.files = append(p.files, f)
	}
	s.pkgs[importPath] = p // before checking: the importer may come back (it cannot loop: Go forbids import cycles)
	conf := types.Config{
		Importer: s,
		// Calls into the empty stand-ins for other modules do not type-check;
		// what the scan needs (objects, constants) still does.
		Error: func(error) {},
	}
	p.types, _ = conf.Check(importPath, s.fset, p.files, p.info)
	return p, nil
}

// scanEnv returns the environment variables the program (a main package) at
// importPath reads, through the module packages it imports.
func scanEnv(root, module, importPath string) (envScan, error) {
	s := newEnvScanner(root, module)
	if _, err := s.load(importPath); err != nil {
		return envScan{}, err
	}
	if p := s.pkgs[importPath]; p.types == nil || p.types.Name() != "main" {
		return envScan{}, fmt.Errorf("%s is not a main package", importPath)
	}
	a := &envAnalysis{s: s, readers: map[any]int{}}
	a.findRanges()
	// Each pass can discover a new accessor (a parameter that receives one,
	// a function that forwards its argument to one); stop when none appears.
	for {
		a.changed = false
		a.pass(false)
		if !a.changed {
			break
		}
	}
	a.pass(true)
	a.structTags()
	sort.Slice(a.out.Reads, func(i, j int) bool {
		if a.out.Reads[i].Name != a.out.Reads[j].Name {
			return a.out.Reads[i].Name < a.out.Reads[j].Name
		}
		return a.out.Reads[i].Pos < a.out.Reads[j].Pos
	})
	sort.Strings(a.out.Unresolved)
	return a.out, nil
}

// envAnalysis follows environment accessors through the loaded packages.
type envAnalysis struct {
	s *envScanner
	// readers maps a function value to the index of its parameter that
	// names the variable: *types.Func (declared functions and methods),
	// *types.Var (parameters, variables and fields holding one), and
	// *ast.FuncLit (closures).
	readers map[any]int
	// ranges maps a range statement's key or value variable to the
	// composite literal it ranges over and whether it is the key.
	ranges  map[*types.Var]rangeOver
	changed bool
	out     envScan
}

type rangeOver struct {
	lit *ast.CompositeLit
	key bool
}

func (a *envAnalysis) mark(key any, index int) {
	if key == nil {
		return
	}
	if _, ok := a.readers[key]; !ok {
		a.readers[key] = index
		a.changed = true
	}
}

// packages returns the loaded packages in import path order.
func (a *envAnalysis) packages() []*scannedPackage {
	var paths []string
	for p := range a.s.pkgs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]*scannedPackage, 0, len(paths))
	for _, p := range paths {
		out = append(out, a.s.pkgs[p])
	}
	return out
}

func (a *envAnalysis) findRanges() {
	a.ranges = map[*types.Var]rangeOver{}
	for _, p := range a.packages() {
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				rs, ok := n.(*ast.RangeStmt)
				if !ok || rs.Tok != token.DEFINE {
					return true
				}
				lit, ok := ast.Unparen(rs.X).(*ast.CompositeLit)
				if !ok {
					return true
				}
				if id, ok := rs.Key.(*ast.Ident); ok {
					if v, ok := p.info.Defs[id].(*types.Var); ok {
						a.ranges[v] = rangeOver{lit: lit, key: true}
					}
				}
				if id, ok := rs.Value.(*ast.Ident); ok {
					if v, ok := p.info.Defs[id].(*types.Var); ok {
						a.ranges[v] = rangeOver{lit: lit}
					}
				}
				return true
			})
		}
	}
}

// pass walks every call once. With record set it collects the reads.
func (a *envAnalysis) pass(record bool) {
	for _, p := range a.packages() {
		for _, f := range p.files {
			var stack []ast.Node
			ast.Inspect(f, func(n ast.Node) bool {
				if n == nil {
					stack = stack[:len(stack)-1]
					return true
				}
				stack = append(stack, n)
				switch n := n.(type) {
				case *ast.CallExpr:
					a.call(p, stack, n, record)
				case *ast.AssignStmt:
					if len(n.Lhs) == len(n.Rhs) {
						for i := range n.Lhs {
							a.bind(p, n.Lhs[i], n.Rhs[i])
						}
					}
				case *ast.ValueSpec:
					if len(n.Names) == len(n.Values) {
						for i := range n.Names {
							a.bind(p, n.Names[i], n.Values[i])
						}
					}
				case *ast.KeyValueExpr:
					// A struct literal field that receives an accessor.
					if id, ok := n.Key.(*ast.Ident); ok {
						a.bind(p, id, n.Value)
					}
				}
				return true
			})
		}
	}
}

// bind makes the variable or field lhs an accessor when rhs is one.
func (a *envAnalysis) bind(p *scannedPackage, lhs, rhs ast.Expr) {
	idx, ok := a.readerOf(p, rhs)
	if !ok {
		return
	}
	a.mark(a.objectOf(p, lhs), idx)
}

// objectOf returns the variable or field an expression names.
func (a *envAnalysis) objectOf(p *scannedPackage, e ast.Expr) types.Object {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		if o := p.info.Defs[e]; o != nil {
			return o
		}
		return p.info.Uses[e]
	case *ast.SelectorExpr:
		return p.info.Uses[e.Sel]
	}
	return nil
}

// readerOf reports whether e is a function value that reads the variable
// its argument at the returned index names.
func (a *envAnalysis) readerOf(p *scannedPackage, e ast.Expr) (int, bool) {
	switch e := ast.Unparen(e).(type) {
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if pn, ok := p.info.Uses[x].(*types.PkgName); ok && pn.Imported().Path() == "os" {
				if e.Sel.Name == "Getenv" || e.Sel.Name == "LookupEnv" {
					return 0, true
				}
				return 0, false
			}
		}
		idx, ok := a.readers[p.info.Uses[e.Sel]]
		return idx, ok
	case *ast.Ident:
		if o := p.info.Uses[e]; o != nil {
			idx, ok := a.readers[o]
			return idx, ok
		}
	case *ast.FuncLit:
		idx, ok := a.readers[e]
		return idx, ok
	}
	return 0, false
}

// call handles one call: a read through an accessor, or an accessor passed
// as an argument.
func (a *envAnalysis) call(p *scannedPackage, stack []ast.Node, c *ast.CallExpr, record bool) {
	if idx, ok := a.readerOf(p, c.Fun); ok && idx < len(c.Args) {
		a.nameArg(p, stack, c.Args[idx], record)
	}
	for i, arg := range c.Args {
		idx, ok := a.readerOf(p, arg)
		if !ok {
			continue
		}
		param := a.param(p, c.Fun, i)
		if param == nil {
			if record {
				a.unresolved(c.Pos(), "passes an environment accessor to "+types.ExprString(c.Fun)+", which the scan cannot follow")
			}
			continue
		}
		a.mark(param, idx)
	}
}

// param returns the i-th parameter of the module function fun calls.
func (a *envAnalysis) param(p *scannedPackage, fun ast.Expr, i int) *types.Var {
	var sig *types.Signature
	switch f := ast.Unparen(fun).(type) {
	case *ast.FuncLit:
		sig, _ = p.info.Types[f].Type.(*types.Signature)
	default:
		o := a.objectOf(p, f)
		if o == nil || o.Pkg() == nil || !a.s.inModule(o.Pkg().Path()) {
			return nil
		}
		sig, _ = o.Type().Underlying().(*types.Signature)
	}
	if sig == nil || i >= sig.Params().Len() || (sig.Variadic() && i >= sig.Params().Len()-1) {
		return nil
	}
	return sig.Params().At(i)
}

// nameArg handles the argument that names the variable read.
func (a *envAnalysis) nameArg(p *scannedPackage, stack []ast.Node, arg ast.Expr, record bool) {
	if tv, ok := p.info.Types[arg]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
		if record {
			a.read(constant.StringVal(tv.Value), arg.Pos())
		}
		return
	}
	id, ok := ast.Unparen(arg).(*ast.Ident)
	if !ok {
		if record {
			a.unresolved(arg.Pos(), "reads a variable named by "+types.ExprString(arg))
		}
		return
	}
	v, _ := p.info.Uses[id].(*types.Var)
	if r, ok := a.ranges[v]; ok && v != nil {
		if record {
			a.rangeNames(p, r, arg.Pos())
		}
		return
	}
	// A parameter of an enclosing function: that function forwards its
	// argument to the accessor.
	for i := len(stack) - 1; i >= 0 && v != nil; i-- {
		var sig *types.Signature
		var key any
		switch fn := stack[i].(type) {
		case *ast.FuncDecl:
			if o, ok := p.info.Defs[fn.Name].(*types.Func); ok {
				sig, key = o.Type().(*types.Signature), o
			}
		case *ast.FuncLit:
			sig, _ = p.info.Types[fn].Type.(*types.Signature)
			key = fn
		default:
			continue
		}
		if sig == nil {
			continue
		}
		for j := 0; j < sig.Params().Len(); j++ {
			if sig.Params().At(j) == v {
				a.mark(key, j)
				return
			}
		}
	}
	if record {
		a.unresolved(arg.Pos(), "reads a variable named by "+types.ExprString(arg))
	}
}

// rangeNames records the constants of the composite literal a range
// variable takes.
func (a *envAnalysis) rangeNames(p *scannedPackage, r rangeOver, pos token.Pos) {
	for _, e := range r.lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if r.key {
				e = kv.Key
			} else {
				e = kv.Value
			}
		}
		tv := p.info.Types[e]
		if tv.Value == nil || tv.Value.Kind() != constant.String {
			a.unresolved(e.Pos(), "ranges over a non-constant variable name "+types.ExprString(e))
			continue
		}
		a.read(constant.StringVal(tv.Value), pos)
	}
}

// structTags records `env:"X"` and `envconfig:"X"` field tags.
func (a *envAnalysis) structTags() {
	for _, p := range a.packages() {
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				field, ok := n.(*ast.Field)
				if !ok || field.Tag == nil {
					return true
				}
				tag, err := strconv.Unquote(field.Tag.Value)
				if err != nil {
					return true
				}
				for _, key := range []string{"env", "envconfig"} {
					if v, ok := reflect.StructTag(tag).Lookup(key); ok {
						if name, _, _ := strings.Cut(v, ","); name != "" && name != "-" {
							a.read(name, field.Pos())
						}
					}
				}
				return true
			})
		}
	}
}

func (a *envAnalysis) read(name string, pos token.Pos) {
	a.out.Reads = append(a.out.Reads, envRead{Name: name, Pos: a.position(pos)})
}

func (a *envAnalysis) unresolved(pos token.Pos, why string) {
	a.out.Unresolved = append(a.out.Unresolved, a.position(pos)+": "+why)
}

func (a *envAnalysis) position(pos token.Pos) string {
	p := a.s.fset.Position(pos)
	if rel, err := filepath.Rel(a.s.root, p.Filename); err == nil {
		p.Filename = filepath.ToSlash(rel)
	}
	return fmt.Sprintf("%s:%d", p.Filename, p.Line)
}
