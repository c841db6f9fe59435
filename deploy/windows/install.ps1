#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
  Installs image-dedup on an instrument server and registers the watcher with Task Scheduler.

.DESCRIPTION
  Copies the tool to an install folder that only administrators and SYSTEM may change, creates a virtual environment
  there with the runtime requirements only, checks the watched folder by running `status` as the task's own account,
  and registers the watcher task (Windows PowerShell 5.1 or later, as an administrator). Running it again upgrades:
  the running task is stopped first. The install folder and task name are recorded in HKLM:\SOFTWARE\image-dedup
  for uninstall.ps1.

.EXAMPLE
  # as an administrator, from the unpacked repository:
  powershell -ExecutionPolicy Bypass -File deploy\windows\install.ps1 -WatchDir F:\Imaging -RunDepth 2

.EXAMPLE
  # a network share: SYSTEM reaches it as the computer account (grant DOMAIN\PC$ modify on the share and folder),
  # or run the task as a service account that may (you are asked for its password):
  powershell -ExecutionPolicy Bypass -File deploy\windows\install.ps1 -WatchDir \\nas\Imaging -Polling `
      -User LAB\svc-imaging
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $WatchDir,
    [ValidateRange(1, 10)] [int] $RunDepth = 1,
    [string] $InstallDir = (Join-Path $env:ProgramData "image-dedup"),
    [string] $User = "SYSTEM",
    [switch] $Polling,
    [string[]] $ExtraArgs = @(),
    [string] $Python = "",
    [string] $TaskName = "image-dedup watcher"
)
$ErrorActionPreference = "Stop"
$repo = (Resolve-Path -LiteralPath (Join-Path $PSScriptRoot "..\..")).ProviderPath
$cwd = (Get-Location -PSProvider FileSystem).ProviderPath
$helper = Join-Path $PSScriptRoot "task_definition.py"
$registryKey = "HKLM:\SOFTWARE\image-dedup"
$logDir = Join-Path $env:ProgramData "image-dedup\logs"  # the fallback log of start-up errors (README)
$InstallDir = [System.IO.Path]::GetFullPath([System.IO.Path]::Combine($cwd, $InstallDir)).TrimEnd("\")
$checkName = "$TaskName (install check)"

function Assert-ExitCode([string] $What) {
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE): see the messages above." }
}

function Set-AdminOnlyAcl([string] $Path, [string] $Writer) {
    # Owner Administrators; inheritance off; Administrators and SYSTEM full control, Users read and execute only,
    # so no standard user can plant a module or a .pth file that the task would run as SYSTEM.
    & icacls.exe $Path /setowner "*S-1-5-32-544" /T /C /Q | Out-Null
    Assert-ExitCode "Taking ownership of $Path"
    & icacls.exe $Path /reset /T /C /Q | Out-Null
    Assert-ExitCode "Resetting the permissions of $Path"
    & icacls.exe $Path /inheritance:r /grant:r "*S-1-5-32-544:(OI)(CI)F" "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-545:(OI)(CI)RX" /Q | Out-Null
    Assert-ExitCode "Setting the permissions of $Path"
    if ($Writer) {
        & icacls.exe $Path /grant "${Writer}:(OI)(CI)M" /Q | Out-Null
        Assert-ExitCode "Letting $Writer write $Path"
    }
}

function Register-TaskFromFile([string] $Name, [string] $File) {
    # The file is UTF-16 LE with a BOM and declares UTF-16: read as that text, it is what Register-ScheduledTask
    # parses (a string declaring UTF-8 fails with "switch from current encoding to specified encoding").
    $xml = Get-Content -Raw -Encoding Unicode -LiteralPath $File
    if ($script:password) {
        Register-ScheduledTask -TaskName $Name -Xml $xml -User $User -Password $script:password -Force | Out-Null
    } else {
        Register-ScheduledTask -TaskName $Name -Xml $xml -Force | Out-Null
    }
}

function Wait-TaskEnd([string] $Name, [int] $Seconds) {
    # 267009 (0x41301): running; 267011 (0x41303): not run yet
    $deadline = (Get-Date).AddSeconds($Seconds)
    do {
        Start-Sleep -Seconds 2
        $info = Get-ScheduledTaskInfo -TaskName $Name
        $state = (Get-ScheduledTask -TaskName $Name).State
    } while (($state -eq "Running" -or $info.LastTaskResult -eq 267011) -and (Get-Date) -lt $deadline)
    return $info.LastTaskResult
}

Write-Host "1/7 checking Python (3.10 or later, installed for all users)"
if ($Python) { $basePython = $Python; $pyArgs = @() } else { $basePython = "py"; $pyArgs = @("-3") }
try {
    $found = & $basePython @pyArgs -I -B $helper check-python
} catch {
    throw "Python was not found ($basePython): install Python 3.10+ from python.org for all users, or pass -Python."
}
if ($LASTEXITCODE -ne 0) { throw "$found" }
Write-Host "    $found"
if (-not (Test-Path -LiteralPath $WatchDir -PathType Container)) {
    throw "The watched folder $WatchDir does not exist or is not a folder: check the path and that the drive is mounted."
}

Write-Host "2/7 stopping the task '$TaskName' if it runs (upgrade)"
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
    Disable-ScheduledTask -TaskName $TaskName | Out-Null
    Stop-ScheduledTask -TaskName $TaskName
    Wait-TaskEnd $TaskName 60 | Out-Null
}

Write-Host "3/7 preparing $InstallDir (administrators and SYSTEM may write, users may read)"
$recorded = (Get-ItemProperty -LiteralPath $registryKey -ErrorAction SilentlyContinue).InstallDir
if (Test-Path -LiteralPath $InstallDir) {
    $ours = ($recorded -eq $InstallDir) -or (Test-Path -LiteralPath (Join-Path $InstallDir "local_runner"))
    $empty = -not (Get-ChildItem -Force -LiteralPath $InstallDir | Select-Object -First 1)
    if (-not ($ours -or $empty)) {
        throw "$InstallDir exists and is not an image-dedup install: remove it, or choose another -InstallDir."
    }
} else {
    New-Item -ItemType Directory -Path $InstallDir | Out-Null
}
Set-AdminOnlyAcl $InstallDir ""  # also takes back a folder a user created before the install
New-Item -ItemType Directory -Force -Path $logDir | Out-Null
Set-AdminOnlyAcl $logDir $User  # the task's account may write its fallback log
New-Item -Path $registryKey -Force | Out-Null
Set-ItemProperty -LiteralPath $registryKey -Name "InstallDir" -Value $InstallDir
Set-ItemProperty -LiteralPath $registryKey -Name "TaskName" -Value $TaskName

Write-Host "4/7 copying the tool and creating the virtual environment (runtime requirements only)"
foreach ($item in "task_script", "local_runner", "protocol", ".venv", "build") {
    $old = Join-Path $InstallDir $item  # replaced whole: an earlier install's folder may have been writable by users
    if (Test-Path -LiteralPath $old) { Remove-Item -Recurse -Force -LiteralPath $old }
}
foreach ($item in "task_script", "local_runner", "protocol", "pyproject.toml", "requirements-runtime.txt", "README.md") {
    Copy-Item -Recurse -Force -LiteralPath (Join-Path $repo $item) -Destination $InstallDir
}
$venv = Join-Path $InstallDir ".venv"
& $basePython @pyArgs -I -m venv $venv
Assert-ExitCode "Creating the virtual environment"
$venvPython = Join-Path $venv "Scripts\python.exe"
& $venvPython -I -m pip install --disable-pip-version-check --no-input -q -r (Join-Path $InstallDir "requirements-runtime.txt")
Assert-ExitCode "pip install (a proxy may need HTTPS_PROXY set)"
& $venvPython -I -m pip install --disable-pip-version-check --no-input -q --no-deps $InstallDir
Assert-ExitCode "Installing image-dedup into the virtual environment"

Write-Host "5/7 writing the task definitions"
$settings = @{
    watch_dir = $WatchDir; install_dir = $InstallDir; python = $venvPython; cwd = $cwd; run_depth = $RunDepth
    user = $User; polling = [bool] $Polling; extra_args = @($ExtraArgs); task_name = $TaskName
}
$env:IMAGE_DEDUP_TASK = ConvertTo-Json -InputObject $settings -Compress  # exact, unlike a native command line
$rendered = & $venvPython -I -B $helper render $InstallDir
Assert-ExitCode "Writing the task definitions"
Remove-Item -LiteralPath "Env:\IMAGE_DEDUP_TASK"
$watch = $rendered[0]; $logFile = $rendered[1]
Write-Host "    $($rendered[2])"
$watcherXml = Get-Content -Raw -Encoding Unicode -LiteralPath (Join-Path $InstallDir "watcher.xml")
$script:password = $null
if ($watcherXml.Contains("<LogonType>Password</LogonType>")) {
    $credential = Get-Credential -UserName $User -Message "Password of $User (stored by Task Scheduler to run without a logged-on user)"
    $networkCredential = $credential.GetNetworkCredential()
    $script:password = $networkCredential.Password
}

Write-Host "6/7 checking the watched folder as $User (status --run-depth $RunDepth, as the task will see it)"
Register-TaskFromFile $checkName (Join-Path $InstallDir "check.xml")
try {
    Start-ScheduledTask -TaskName $checkName
    $result = Wait-TaskEnd $checkName 300
} finally {
    Unregister-ScheduledTask -TaskName $checkName -Confirm:$false
}
if ($result -ne 0) {
    throw ("As $User, status on $watch ended with code $result (2: the folder is missing or unreadable for that " +
        "account, e.g. a drive mapped only for you, or a share the account may not read). Fix access and run again.")
}

Write-Host "7/7 registering and starting the task '$TaskName' (runs as $User)"
Register-TaskFromFile $TaskName (Join-Path $InstallDir "watcher.xml")
Start-ScheduledTask -TaskName $TaskName
Start-Sleep -Seconds 15
if ((Get-ScheduledTask -TaskName $TaskName).State -ne "Running") {
    $code = (Get-ScheduledTaskInfo -TaskName $TaskName).LastTaskResult
    foreach ($log in $logFile, (Join-Path $logDir "local_runner.log")) {
        if (Test-Path -LiteralPath $log) { Write-Host "--- $log"; Get-Content -Tail 20 -LiteralPath $log }
    }
    throw "The watcher stopped right after its start (exit code $code): see the log lines above."
}
Write-Host "Installed. The watcher runs now and at every boot. Log: $logFile"
Write-Host "Status (as you, not as the task's account): & '$venvPython' -I -m local_runner status '$watch' --run-depth $RunDepth"
Write-Host "Remove: powershell -ExecutionPolicy Bypass -File deploy\windows\uninstall.ps1 [-RemoveInstall]"
